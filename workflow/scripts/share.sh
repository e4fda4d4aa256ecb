#!/usr/bin/env bash
# Share built artifacts through the DVC remote (.dvc/config's default, `store`).
#
#   workflow/scripts/share.sh push [--configfile PRESET.yaml]
#       Record what was built (by Snakemake or by `dvc repro`) in dvc.lock and the DVC cache, then upload it.
#       `dvc commit` rewrites the files it moves into the cache, in its own order: the times are then reset in
#       DAG order for Snakemake, as after a pull. Commit dvc.yaml and dvc.lock afterwards: they name exactly
#       what the remote holds.
#   workflow/scripts/share.sh pull [--configfile PRESET.yaml]
#       In a clone: download every artifact dvc.lock names, refuse if DVC does not then see the whole pipeline
#       as current or if a pulled file's md5 is not the one dvc.lock records, and only then mark the outputs
#       current for Snakemake as well. DVC checks files out in no particular order, so an input can end up newer
#       than its output; Snakemake (which also has no job metadata in a fresh clone) would rerun those jobs.
#       `snakemake --touch` sets the times in DAG order.
#       A corrupted object in the remote: the remote `store` verifies downloads (.dvc/config, verify = true), so
#       `dvc pull` refuses it and fails naming the output; a remote without `verify` hands it over, and DVC then
#       records the file under the digest the object is named by (`dvc status` says up to date), so the md5 of
#       every pulled file is recomputed against dvc.lock here.
#
#   workflow/scripts/share.sh commit [--configfile PRESET.yaml]
#       Only the recording half of push (bench/noop_status.py uses it).
#
# The --configfile arguments are Snakemake's: pass the preset dvc.yaml was exported for.
set -euo pipefail
cmd=${1:?usage: share.sh push|pull|commit [--configfile PRESET.yaml]}
shift

record() {
    dvc commit --force --quiet   # outputs Snakemake built are not in the DVC cache yet; DVC's own are a no-op
    snakemake --touch --cores 1 "$@"
}

case $cmd in
commit)
    record "$@"
    ;;
push)
    record "$@"
    dvc push
    ;;
pull)
    if ! dvc pull; then
        echo "share.sh: dvc pull failed for the outputs named above: the remote lacks their objects, or it holds" \
             "a corrupted copy that DVC refused (\`dvc pull -v\` logs each as 'corrupted cache file'); not" \
             "marking anything current for Snakemake" >&2
        exit 1
    fi
    if ! dvc status --quiet; then
        dvc status >&2
        echo "share.sh: the pulled artifacts do not match this commit's dvc.yaml/dvc.lock (above); not marking" \
             "them current for Snakemake" >&2
        exit 1
    fi
    python -c 'import sys; from tempered.dvc_export import verify_pulled_outputs; sys.exit(verify_pulled_outputs())'
    snakemake --touch --cores 1 "$@"
    ;;
*)
    echo "share.sh: unknown command '$cmd' (expected push, pull or commit)" >&2
    exit 2
    ;;
esac
