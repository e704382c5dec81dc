# Sourced by run.sh and test.sh: installs what StepAudio2.Lab needs on a fresh Debian 12 machine with the .NET 10 SDK.
# Every step is idempotent and quiet when already done.

apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  echo "installing Debian packages: ${missing[*]}"
  local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Debian's PyTorch 1.13 (CPU) is the reference implementation's engine; libopenblas0-pthread keeps its BLAS fast.
setup_python_reference() {
  apt_install python3 python3-numpy python3-torch python3-torchaudio libopenblas0-pthread
}

require_dotnet() {
  command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 2; }
}

# Builds the steplab CLI into artifacts/steplab, where the launcher ./steplab (the command the README uses) runs it.
build_cli() {
  require_dotnet
  dotnet build src/StepAudio2.Lab.Cli -c Release --nologo -v q -o artifacts/steplab >/dev/null
}

# Real Jupyter with the .NET Interactive kernel, for the notebook tests (nbconvert --execute with kernel .net-csharp).
# Always call /usr/bin/jupyter: another `jupyter` on PATH (pyenv, conda) would not see Debian's nbconvert/nbclient.
DOTNET_INTERACTIVE_VERSION=1.0.712001
setup_jupyter() {
  apt_install jupyter-notebook jupyter-nbconvert python3-nbclient python3-ipykernel
  require_dotnet
  local tools="$HOME/.dotnet/tools"
  case ":$PATH:" in *":$tools:"*) ;; *) export PATH="$tools:$PATH" ;; esac
  local have
  have=$(dotnet tool list -g | awk 'tolower($1) == "microsoft.dotnet-interactive" { print $2 }')
  if [[ "$have" != "$DOTNET_INTERACTIVE_VERSION" ]]; then
    echo "installing the dotnet tool Microsoft.dotnet-interactive $DOTNET_INTERACTIVE_VERSION${have:+ (replacing $have)}"
    if [[ -z "$have" ]]; then
      dotnet tool install -g Microsoft.dotnet-interactive --version "$DOTNET_INTERACTIVE_VERSION" >/dev/null
    else
      dotnet tool update -g Microsoft.dotnet-interactive --version "$DOTNET_INTERACTIVE_VERSION" --allow-downgrade >/dev/null
    fi
  fi
  local spec_dir
  spec_dir="$(/usr/bin/jupyter --data-dir)/kernels/.net-csharp"
  if [[ ! -f "$spec_dir/kernel.json" ]]; then
    echo "registering the .NET Interactive kernels with Jupyter"
    mkdir -p "$(dirname "$spec_dir")"   # the installer writes into this folder but does not create it
    dotnet interactive jupyter install >/dev/null
    [[ -f "$spec_dir/kernel.json" ]] || { echo "dotnet interactive jupyter install made no $spec_dir/kernel.json" >&2; return 1; }
  fi
  # The kernel's own HTTP API (used only by JavaScript in a live notebook page) listens on loopback only.
  /usr/bin/python3 - "$spec_dir/kernel.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    spec = json.load(f)
if "--http-local-only" not in spec["argv"]:
    spec["argv"].append("--http-local-only")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2)
PY
}

# Headless Chromium loads the executed notebooks' HTML offline and screenshots them; DejaVu/Liberation give readable text.
setup_chromium() {
  apt_install chromium fonts-dejavu-core fonts-liberation
}
