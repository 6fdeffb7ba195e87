# shellcheck shell=bash
#! Installs the Debian packages callscope needs, only those missing, and says what it does.

# Packages to build: ALSA headers (cpal), libclang (nokhwa's bindgen), nasm (fast openh264),
# cmake (bundled libopus), pkg-config.
CALLSCOPE_BUILD_PACKAGES=(pkg-config libasound2-dev libclang1-14 nasm cmake)

# Libraries the window opens at run time (X11/Wayland, OpenGL through Mesa, fonts).
CALLSCOPE_WINDOW_PACKAGES=(libx11-xcb1 libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0
    libgl1 libegl1 libgl1-mesa-dri libfontconfig1)

# The window test runs the app under a virtual display and reads its screenshot.
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
        python3 -m venv "$venv"
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
