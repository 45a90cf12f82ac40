# Sourced by the GPU scripts: puts a `vrgv` package made of links into this checkout (sdk/ as vrgv,
# training/ as vrgv.training, export/ as vrgv.export) on PYTHONPATH, so they run without installing vrgv.
# Defines $shim (removed on exit) and exports PYTHONPATH.
vrgv_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shim="$(mktemp -d)"
trap 'rm -rf "$shim"' EXIT
mkdir -p "$shim/vrgv"
for entry in "$vrgv_root"/sdk/*; do ln -s "$entry" "$shim/vrgv/$(basename "$entry")"; done
ln -s "$vrgv_root/training" "$shim/vrgv/training"
ln -s "$vrgv_root/export" "$shim/vrgv/export"
export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}"
