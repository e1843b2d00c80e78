# Installs the Debian/Ubuntu packages swift-datapath needs, when missing.
# Usage: install_deps PACKAGE...   (uses sudo when not root)
install_deps() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Swift itself does not come from apt: say so clearly.
require_swift() {
    command -v swift >/dev/null 2>&1 && return 0
    echo "swift-datapath needs a Swift 6.2+ toolchain on PATH (https://www.swift.org/install/linux/)" >&2
    exit 1
}
