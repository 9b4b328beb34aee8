#!/bin/bash
# bootstrap.sh: set up bneck on Debian 12 and build it.
#
#   ./bootstrap.sh            install packages (when root), autoreconf, configure, make
#   ./bootstrap.sh --demo     ... then run the built-in demo (jobs/demo.sh)
#   ./bootstrap.sh --check    ... then run every test (make check)
#   ./bootstrap.sh --check-mpich   install packages, then build a second copy
#                             against MPICH in a temporary folder and run the
#                             MPI tests there (.ci/mpich); this tree is untouched
#
# Extra arguments after the mode go to configure (e.g. --disable-dnnl).
# Set BNECK_NO_APT=1 to skip the package step.
set -euo pipefail
cd "$(dirname "$0")"

mode=build
case "${1:-}" in
    --demo) mode=demo; shift ;;
    --check) mode=check; shift ;;
    --check-mpich) mode=check-mpich; shift ;;
    --help|-h) sed -n '2,12p' "$0"; exit 0 ;;
esac

# Debian packages: build tools, MPI, parallel HDF5, BLAS, codecs, hashing,
# oneDNN, Python with numpy, h5py and PyTorch for the reference tests,
# iproute2 + util-linux (ip netns, unshare) for the test hosts (tests/hosts),
# Cairo and json-c for the figures and files of bneck report and bneck cost,
# xmllint and headless Chromium for the tests of those figures and pages,
# Slurm with munge for the tests of slurm/*.sbatch on a private one-node cluster,
# MPICH with its parallel HDF5 for the second, MPICH-only test build
# (--check-mpich), and clang with libFuzzer for the fuzz targets (.ci/fuzz); Open MPI stays Debian's default mpicc/mpirun.
packages=(
    build-essential autoconf automake libtool pkg-config procps iproute2 util-linux
    slurm-wlm munge
    openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
    mpich libmpich-dev libhdf5-mpich-dev
    libopenblas-dev libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev nettle-dev libdnnl-dev libinih-dev
    libcairo2-dev libjson-c-dev fonts-dejavu-core libxml2-utils chromium clang libclang-rt-dev
    python3 python3-numpy python3-h5py python3-torch python3-torchvision
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] && [ "${BNECK_NO_APT:-0}" != 1 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
        echo "bootstrap: run as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

[ "$mode" = check-mpich ] && exec .ci/mpich "$@"

jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
    autoreconf -fi
fi
if [ ! -f Makefile ] || [ "$#" -gt 0 ] || [ configure -nt config.status ]; then
    ./configure "$@"
fi
make -j"$jobs"

if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
case $mode in
    demo)
        BNECK=./bneck jobs/demo.sh demo
        ;;
    check)
        set +e
        make -j"$jobs" check
        rc=$?
        set -e
        if [ -f test-suite.log ]; then
            pass=$(sed -n 's/^# PASS: *//p' test-suite.log); fail=$(sed -n 's/^# FAIL: *//p' test-suite.log)
            skip=$(sed -n 's/^# SKIP: *//p' test-suite.log); err=$(sed -n 's/^# ERROR: *//p' test-suite.log)
            [ "$rc" != 0 ] && sed -n '/^FAIL\|^ERROR/,$p' test-suite.log | head -n 200
            echo "tests: ${pass:-0} passed, $(( ${fail:-0} + ${err:-0} )) failed, ${skip:-0} skipped"
        fi
        exit $rc
        ;;
esac
