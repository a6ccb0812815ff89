# A real third-party UDP ASSOCIATE client: Python's socks module (PySocks,
# Debian package python3-socks).
# Usage: python3 udp.py PROXY_HOST PROXY_PORT TARGET_HOST TARGET_PORT
# Sends three datagrams through the proxy to a UDP echo server and prints
# "OK <source address>" when all come back intact.
import socket
import sys

import socks

proxy_host, proxy_port, target_host, target_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, proxy_host, proxy_port)
s.settimeout(10)
source = None
for i in range(3):
    msg = ("datagram %d " % i).encode() * 50
    s.sendto(msg, (target_host, target_port))
    data, source = s.recvfrom(4096)
    if data != msg:
        print("MISMATCH", len(data), len(msg))
        sys.exit(1)
print("OK %s:%d" % source)
