#!/usr/bin/env bash
# Checks the layering of src/ (docs/DESIGN.md, section 2): a file of a layer
# may include headers of its own layer and of the layers listed as below it,
# never of a layer above or beside it. Run as the test `layering.includes`;
# an upward include fails it. Public headers (include/panicstop/) are the
# library's API and may be included anywhere.
# Usage: check-layers.sh SRC_DIR
set -euo pipefail
src=${1:?usage: check-layers.sh SRC_DIR}

# layer: the layers it may include besides itself. witness and lockprof are
# siblings above lockclass: neither may include the other.
declare -A below=(
  [sys]=""
  [thread]="sys"
  [lock]="sys thread"
  [lockclass]="sys thread lock"
  [witness]="sys thread lock lockclass"
  [lockprof]="sys thread lock lockclass"
  [stop]="sys thread lock lockclass"
  [panic]="sys thread lock lockclass stop"
  [snapshot]="sys thread lock lockclass stop"
  [dump]="sys thread lock lockclass stop panic snapshot"
  [kdb]="sys thread lock lockclass stop panic snapshot dump"
  [read]="sys"
)

# Narrower rules inside a layer: "layer:lower" may be included only by these
# files. The writers are functions of the crash record: of the dump layer,
# only the panic path's glue reads the panic layer.
declare -A only_in=(
  [dump:panic]="dump_step.cpp"
)

bad=0
checked=0
for dir in "$src"/*/; do
  layer=$(basename "$dir")
  if [[ -z "${below[$layer]+set}" ]]; then
    echo "layering: src/$layer is not in the layer table of $0" >&2
    bad=1
    continue
  fi
  allowed=" $layer ${below[$layer]} "
  for file in "$dir"*.cpp "$dir"*.hpp; do
    [[ -e "$file" ]] || continue
    checked=$((checked + 1))
    while IFS=: read -r line target; do
      if [[ "$allowed" == *" $target "* ]]; then
        files=${only_in[$layer:$target]-}
        if [[ -n "$files" && " $files " != *" $(basename "$file") "* ]]; then
          echo "layering: ${file#"$src"/}:$line includes $target/ (in $layer, only $files may)" >&2
          bad=1
        fi
        continue
      fi
      [[ -z "${below[$target]+set}" ]] && continue  # not a layer (panicstop/, system headers)
      echo "layering: ${file#"$src"/}:$line includes $target/ (a layer above or beside $layer)" >&2
      bad=1
    done < <(grep -n -o '^#include "[a-z_]*/' "$file" | sed -E 's/^([0-9]+):#include "([a-z_]*)\//\1:\2/')
  done
done
if [[ $checked -eq 0 ]]; then
  echo "layering: no source files under $src" >&2
  exit 1
fi
if [[ $bad -ne 0 ]]; then
  echo "layering: a layer may use only the layers below it (docs/DESIGN.md, section 2)" >&2
  exit 1
fi
echo "layering: $checked files checked, every include goes down"
