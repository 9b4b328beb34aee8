# tests/lib.sh: helpers shared by the test scripts (sourced, not run).

# bn_mkweights OUT ARGS...: what `"$BNECK" mkweights OUT ARGS...` writes, made
# once per build and copied after that. A weights file takes 4 to 6 s to make
# (its batch norms are calibrated by forward passes), and the suite needs
# dozens of them with a handful of seeds. make check sets BNECK_TEST_CACHE
# (tests/cache in the build folder); without it every call runs mkweights.
# The key is the arguments and the bneck binary's contents, so a rebuilt
# bneck never gets a file made by an older one. mkweights is
# deterministic: the same arguments give the same bytes.
bn_mkweights() {
    local out=$1
    shift
    if [ -z "${BNECK_TEST_CACHE:-}" ]; then
        "$BNECK" mkweights "$out" "$@"
        return
    fi
    # One folder per bneck binary (by its contents), the files in it by
    # arguments; a new binary's first miss removes the folders of older ones.
    local bin key
    bin=$(sha1sum < "$BNECK" | cut -c1-16)
    key=$(printf '%s\n' "$@" | sha1sum | cut -c1-16)
    local dir="$BNECK_TEST_CACHE/$bin"
    local hit="$dir/w-$key.h5"
    if [ ! -s "$hit" ]; then
        mkdir -p "$dir"
        find "$BNECK_TEST_CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$bin" -exec rm -rf {} + 2> /dev/null || true
        # Made under a name of this process's own, then renamed: tests run in
        # parallel, and a reader must never see half a file.
        local part="$dir/.w-$key.$$.$RANDOM.h5"
        "$BNECK" mkweights "$part" "$@" || { rm -f "$part"; return 1; }
        mv -f "$part" "$hit"
    fi
    cp "$hit" "$out"
}
