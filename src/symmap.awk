# SPDX-License-Identifier: MIT
# symmap.awk - turn src/libdynshm.sym into the linker's version script.
#
# libdynshm.sym is the one list of exported names (one a line, # comments);
# a line "@NODE" starts the names added in version node NODE.  Each node
# inherits the one before it, and the first also hides everything else
# (local: *), so a name is exported only if it is listed, and a program
# linked against an older release keeps binding to the node it knew.
{ sub(/#.*/, "") }
NF == 0 { next }
$1 ~ /^@/ {
    if (node != "") close_node()
    prev = node
    node = substr($1, 2)
    printf "%s {\nglobal:\n", node
    next
}
{
    if (node == "") { print "symmap.awk: a name before the first @NODE line" > "/dev/stderr"; exit 1 }
    printf "    %s;\n", $1
}
function close_node() {
    if (prev == "") printf "local:\n    *;\n};\n"
    else printf "} %s;\n", prev
}
END { if (node != "") close_node() }
