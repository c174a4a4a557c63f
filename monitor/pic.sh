#!/bin/sh
# pic.sh READELF OBJ: fail unless every relocation in OBJ's code and data
# (debug information aside) is PC-relative. The enclave runs in whichever
# slot it occupies, on whichever host it moved to, as the same bytes (its
# measurement): an absolute address anywhere in it would point into the slot
# it was linked for. (Arm's ADD_ABS_LO12_NC and LDST*_ABS_LO12_NC are the low
# 12 bits of an ADRP pair: the same in every 4 KiB-aligned slot.)
set -e
bad=$("$1" -rW "$2" | awk '
  /^Relocation section/ { sec = $3; next }
  /^[0-9a-f]+ / {
    if (sec ~ /debug|eh_frame/) next
    if ($3 ~ /^R_RISCV_(BRANCH|JAL|CALL|CALL_PLT|PCREL_HI20|PCREL_LO12_I|PCREL_LO12_S|RELAX|RVC_BRANCH|RVC_JUMP)$/) next
    if ($3 ~ /^R_AARCH64_(CALL26|JUMP26|CONDBR19|TSTBR14|ADR_PREL_PG_HI21|ADR_PREL_LO21|ADD_ABS_LO12_NC|LDST(8|16|32|64|128)_ABS_LO12_NC|PREL32|PREL64)$/) next
    print sec, $3
  }')
if [ -n "$bad" ]; then
  echo "$2 is not position-independent (the enclave runs in any slot):"
  echo "$bad"
  exit 1
fi
