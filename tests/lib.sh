# tests/lib.sh: helpers shared by the test scripts (sourced, not run).

# bn_mkweights OUT ARGS...: what `"$BNECK" mkweights OUT ARGS...` writes, made
# once per build and copied after that. A weights file takes 4 to 6 s to make
# (its batch norms are calibrated by forward passes), and the suite needs
# dozens of them with a handful of seeds. make check sets BNECK_TEST_CACHE
# (tests/cache in the build folder); without it every call runs mkweights.
# The key is the arguments and the bneck binary (size, time, inode), so a
# rebuilt bneck never gets a file made by an older one. mkweights is
# deterministic: the same arguments give the same bytes.
bn_mkweights() {
    local out=$1
    shift
    if [ -z "${BNECK_TEST_CACHE:-}" ]; then
        "$BNECK" mkweights "$out" "$@"
        return
    fi
    local key
    key=$({ stat -Lc '%s %Y %i' "$BNECK"; printf '%s\n' "$@"; } | sha1sum | cut -c1-20)
    local hit="$BNECK_TEST_CACHE/w-$key.h5"
    if [ ! -s "$hit" ]; then
        mkdir -p "$BNECK_TEST_CACHE"
        # Made under a name of this process's own, then renamed: tests run in
        # parallel, and a reader must never see half a file.
        local part="$BNECK_TEST_CACHE/.w-$key.$$.$RANDOM.h5"
        "$BNECK" mkweights "$part" "$@" || { rm -f "$part"; return 1; }
        mv -f "$part" "$hit"
    fi
    cp "$hit" "$out"
}
