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

# Builds the steplab CLI once into artifacts/steplab and puts a `steplab` function on hand.
build_cli() {
  require_dotnet
  dotnet build src/StepAudio2.Lab.Cli -c Release --nologo -v q -o artifacts/steplab >/dev/null
  steplab() { dotnet artifacts/steplab/steplab.dll "$@"; }
}
