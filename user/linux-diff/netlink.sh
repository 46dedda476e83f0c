# NETLINK_ROUTE, through busybox ip (netlink for addresses and routes,
# an ioctl for "up") and python3 (glibc's if_nameindex reads RTM_GETLINK).
# No NIC in this boot: lo only, which Linux starts down.
ip link set lo up; echo "set up: $?"
ip -o link show | grep -o '^[0-9]*: [a-z0-9]*: <[^>]*>'
ip -o -4 addr show | awk '{print $1, $2, $3, $4, $5, $6}'
ip -4 route show; echo "route: $?"
python3 -c 'import socket; print(socket.if_nameindex())'
