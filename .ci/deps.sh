# shellcheck shell=bash
#! Installs the Debian packages callscope needs, only those missing, and says what it does.

# The libclang package of this release (nokhwa's bindgen): libclang1-14 on Debian 12, another
# version elsewhere (Ubuntu, later Debian). One already installed is taken as it is.
callscope_libclang_package() {
    local installed
    installed=$(dpkg-query -W -f='${Package} ${Status}\n' 'libclang1-[0-9]*' 2>/dev/null |
        awk '/install ok installed/ {print $1}' | sort -V | tail -n 1)
    if [ -n "$installed" ]; then
        echo "$installed"
        return 0
    fi
    local available
    available=$(apt-cache pkgnames libclang1- 2>/dev/null | grep -E '^libclang1-[0-9]+$' | sort -V | tail -n 1)
    if [ -z "$available" ]; then
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq >&2
        available=$(apt-cache pkgnames libclang1- | grep -E '^libclang1-[0-9]+$' | sort -V | tail -n 1)
    fi
    echo "${available:-libclang1-14}"
}

# Packages to build: the C compiler and linker (build-essential), ALSA headers (cpal),
# libclang (nokhwa's bindgen), nasm (fast openh264), cmake (bundled libopus), pkg-config.
CALLSCOPE_BUILD_PACKAGES=(build-essential pkg-config libasound2-dev "$(callscope_libclang_package)" nasm cmake)

# Libraries the window opens at run time (X11/Wayland, OpenGL through Mesa, fonts).
CALLSCOPE_WINDOW_PACKAGES=(libx11-xcb1 libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0
    libgl1 libegl1 libgl1-mesa-dri libfontconfig1)

# The window test runs the app under a virtual display and reads its screenshot (with
# ImageMagick's `magick` or `convert`, whichever the release has).
CALLSCOPE_TEST_PACKAGES=(xvfb xauth imagemagick)

# The tests of signaling nodes start their own Redis; the TURN test its own coturn, between
# network namespaces it makes with iproute2's `ip netns` (as root).
CALLSCOPE_CLUSTER_PACKAGES=(redis-server coturn iproute2)

# The interop tests and `callscope bench call` run aiortc, an independent WebRTC stack, from a
# Python venv.
CALLSCOPE_INTEROP_PACKAGES=(python3 python3-venv)

callscope_need_interop_venv() {
    local venv="target/interop-venv"
    local requirements="tests/interop/requirements.txt"
    if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$venv/requirements.txt"; then
        echo "callscope: aiortc venv present: $venv"
    else
        echo "callscope: setting up the aiortc venv for the interop tests in $venv (pip, wheels)"
        # The system's python3 (installed above), whichever other python is first on PATH.
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/requirements.txt"
    fi
    CALLSCOPE_AIORTC_PYTHON="$PWD/$venv/bin/python"
    export CALLSCOPE_AIORTC_PYTHON
}

callscope_need_packages() {
    local missing=()
    local package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "callscope: system packages present: $*"
        return 0
    fi
    echo "callscope: installing missing system packages: ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

callscope_need_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "callscope: cargo is missing; install Rust 1.95 or newer with rustup (https://rustup.rs)" >&2
        return 1
    fi
    echo "callscope: using $(cargo --version)"
}
