#!/usr/bin/env python3
"""seeds_netq.py DIR: writes the seed inputs of fuzz_netq (and the DNS
queries of fuzz_dns_query) - real packets built by hand with correct
IPv4/IPv6/TCP/UDP/ICMP headers and checksums, the bytes a queue or the
DNS responder would be handed. Standard library only; rerun to remake."""
import os
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(proto, src, dst, payload, frag=0, ident=0x1c46):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident,
                      frag, 64, proto, 0, bytes(src), bytes(dst))
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def ip6(nxt, src, dst, payload):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nxt, 64,
                       bytes(src), bytes(dst)) + payload


def pseudo4(src, dst, proto, seg):
    return bytes(src) + bytes(dst) + struct.pack("!BBH", 0, proto, len(seg))


def pseudo6(src, dst, nxt, seg):
    return bytes(src) + bytes(dst) + struct.pack("!I3xB", len(seg), nxt)


def tcp(sport, dport, seq, ack, flags, data, pseudo):
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags,
                    64240, 0, 0)
    c = csum(pseudo(h + data) + h + data)
    return h[:16] + struct.pack("!H", c) + h[18:] + data


def udp(sport, dport, data, pseudo, zero=False):
    h = struct.pack("!HHHH", sport, dport, 8 + len(data), 0)
    c = 0 if zero else (csum(pseudo(h + data) + h + data) or 0xFFFF)
    return h[:6] + struct.pack("!H", c) + data


def dns_query(name, qid=0x3a7e, qtype=1):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + \
        struct.pack("!HH", qtype, 1)


A = [10, 244, 0, 17]
B = [10, 96, 0, 10]
A6 = [0xfd, 0] + [0] * 13 + [0x11]
B6 = [0xfd, 0] + [0] * 13 + [0x22]


def packets():
    p4 = lambda proto: lambda seg: pseudo4(A, B, proto, seg)
    p6 = lambda seg: pseudo6(A6, B6, 6, seg)
    get = b"GET /healthz HTTP/1.1\r\nHost: web.shop\r\n\r\n"
    yield "ipv4-tcp-http-get", ip4(6, A, B, tcp(41000, 8080, 1, 1, 0x18, get,
                                                   p4(6)))
    yield "ipv4-tcp-syn", ip4(6, A, B, tcp(41002, 8080, 7, 0, 0x02, b"",
                                              p4(6)))
    q = dns_query("web.shop.svc.cluster.local")
    yield "ipv4-udp-dns", ip4(17, A, B, udp(53211, 53, q, p4(17)))
    yield "ipv4-udp-zero-csum", ip4(17, A, B, udp(53212, 9000, b"ping",
                                                  p4(17), zero=True))
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4d2, 1) + b"abcdefgh"
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    yield "ipv4-icmp-echo", ip4(1, A, B, icmp)
    yield "ipv4-fragment", ip4(17, A, B, b"tail of a datagram", frag=185)
    yield "ipv6-tcp-data", ip6(6, A6, B6, tcp(41010, 443, 9, 9, 0x18,
                                              b"\x17\x03\x03\x00\x05hello",
                                              p6))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    # fault byte: 0 corrupt, 1 corrupt at percent, 2 duplicate, 3 latency
    modes = [(0, 100), (1, 50), (2, 100), (3, 20)]
    for i, (name, pkt) in enumerate(packets()):
        mode, arg = modes[i % len(modes)]
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([mode, arg, 1 + i]) + pkt)
    # one raw netlink buffer as the kernel sends it: NFQNL_MSG_PACKET with
    # the packet header and payload attributes (fault byte | 0x80)
    pkt = dict(packets())["ipv4-tcp-http-get"]
    def attr(t, v):
        a = struct.pack("=HH", 4 + len(v), t) + v
        return a + b"\0" * (-len(a) % 4)
    body = struct.pack("=BBH", 2, 0, struct.unpack("=H", struct.pack(
        "!H", 51200))[0]) + attr(1, struct.pack("!IHB", 77, 0x0800, 3)) + \
        attr(10, pkt)
    msg = struct.pack("=IHHII", 16 + len(body), 3 << 8, 0, 0, 0) + body
    with open(os.path.join(out, "raw-netlink-packet"), "wb") as f:
        f.write(bytes([0x80, 100, 0]) + msg)
    if len(sys.argv) > 2:   # DNS queries for fuzz_dns_query
        dns = sys.argv[2]
        os.makedirs(dns, exist_ok=True)
        for name, q in [("a-web-shop", dns_query("web.shop.svc.cluster.local")),
                        ("aaaa-example", dns_query("example.org", 0x11, 28)),
                        ("root-ns", dns_query("", 0x22, 2)[:12] + b"\0" +
                         struct.pack("!HH", 2, 1))]:
            with open(os.path.join(dns, name), "wb") as f:
                f.write(q)


if __name__ == "__main__":
    main()
