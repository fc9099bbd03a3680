# Sourced by the scripts that set up what the tests need (neon.sh, vulkan.sh, opencl.sh).
#
# apt_install_missing NAME PACKAGE...: installs with apt, as root or through sudo, those of
# the Debian packages that are not installed yet, saying which under NAME. A package named
# with an architecture (libc6:arm64) has that foreign architecture added first, so that its
# indexes are fetched.
apt_install_missing() {
    local name=$1
    shift
    local missing=() p arch sudo=""
    for p in "$@"; do
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$p")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    echo "$name: installing ${missing[*]}" >&2
    for p in "${missing[@]}"; do
        case $p in
            *:*)
                arch=${p#*:}
                if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
                    $sudo dpkg --add-architecture "$arch"
                fi
                ;;
        esac
    done
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}
