using System.Net;
using System.Net.Sockets;
using System.Text;

namespace StepAudio2.Lab.Tests.Tools;

/// <summary>A tiny HTTP server on 127.0.0.1 for one test: a handler per request, a request log, stopped on dispose.</summary>
internal sealed class LoopbackServer : IDisposable
{
    private readonly HttpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Func<HttpListenerContext, CancellationToken, Task> _handler;
    private int _requests;

    public LoopbackServer(Func<HttpListenerContext, CancellationToken, Task> handler)
    {
        _handler = handler;
        // retry: the probed port may be taken by another process or test between probe and bind. A fresh listener per
        // try: one that failed to bind keeps the old prefix's endpoint, and closing it later throws "address in use".
        for (int attempt = 0; ; attempt++)
        {
            int port = FreePort();
            BaseUrl = new Uri($"http://127.0.0.1:{port}/");
            var listener = new HttpListener();
            listener.Prefixes.Add(BaseUrl.AbsoluteUri);
            try { listener.Start(); _listener = listener; break; }
            catch (HttpListenerException) when (attempt < 5)
            {
                try { listener.Abort(); } catch (Exception) { } // best effort: it never listened
            }
        }
        _loop = Task.Run(LoopAsync);
        // bounded: whatever the test does, the server stops by itself
        _stop.CancelAfter(TimeSpan.FromSeconds(30));
        _stop.Token.Register(() => { try { _listener.Stop(); } catch (ObjectDisposedException) { } });
    }

    public Uri BaseUrl { get; }
    public int RequestCount => Volatile.Read(ref _requests);
    public List<(string PathAndQuery, string? Authorization, string? ApiKey)> Requests { get; } = [];

    /// <summary>Responds with <paramref name="status"/> and <paramref name="body"/> to every request.</summary>
    public static LoopbackServer Fixed(int status, string body, string contentType = "application/json") =>
        new(async (ctx, ct) => await WriteAsync(ctx, status, body, contentType, ct));

    public static async Task WriteAsync(HttpListenerContext ctx, int status, string body, string contentType, CancellationToken ct)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = contentType;
        ctx.Response.ContentLength64 = bytes.Length;
        await ctx.Response.OutputStream.WriteAsync(bytes, ct);
        ctx.Response.Close();
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception) { return; } // listener stopped
            Interlocked.Increment(ref _requests);
            lock (Requests) Requests.Add((ctx.Request.Url!.PathAndQuery, ctx.Request.Headers["Authorization"], ctx.Request.Headers["X-Api-Key"]));
            _ = Task.Run(async () =>
            {
                try { await _handler(ctx, _stop.Token); }
                catch (Exception) { try { ctx.Response.Abort(); } catch (Exception) { } }
            });
        }
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _listener.Close(); } catch (ObjectDisposedException) { }
        _loop.Wait(TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }
}
