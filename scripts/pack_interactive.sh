#!/usr/bin/env bash
# Packs the notebook extension (src/StepAudio2.Lab.Interactive) into the local feed artifacts/packages/, the folder the
# notebooks name with `#i "nuget: ../artifacts/packages"`. Idempotent: re-packing the same version would otherwise be
# ignored by NuGet, which serves its cached copy, so the cached copy in the global packages folder is removed first.
# Usage: bash scripts/pack_interactive.sh        (prints the package path)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 2; }

feed=artifacts/packages
mkdir -p "$feed"
dotnet pack src/StepAudio2.Lab.Interactive -c Release --nologo -v q -o "$feed" >/dev/null

# the global packages folder (NUGET_PACKAGES or ~/.nuget/packages) holds one extracted copy per id/version: drop ours
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}/stepaudio2.lab.interactive"
rm -rf "$cache"

ls -1 "$feed"/StepAudio2.Lab.Interactive.*.nupkg
