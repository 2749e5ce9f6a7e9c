#!/usr/bin/env python3
"""Writes the small committed seed corpora (fuzz/corpus/<target>/) from the repo's own
fixtures and a few hand-written protocol replies. Run from the repository root; re-running
rewrites the same files (names are content hashes)."""
import glob, hashlib, os, re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "crates/firewall/tests/data")

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(ROOT, "fuzz/corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)

def read(path):
    with open(path, "rb") as f:
        return f.read()

# config: the example config and the TOML examples in docs/config.md.
put("config", read(os.path.join(ROOT, "examples/portwarden.toml")))
config_md = read(os.path.join(ROOT, "docs/config.md")).decode()
for block in re.findall(r"```toml\n(.*?)```", config_md, re.S):
    put("config", block)

# blackbox_yml: the modules of the translation tests and of docs/metrics.md.
blackbox_dir = "crates/portwarden/src/api/blackbox"
for path in sorted(os.path.join(blackbox_dir, f) for f in os.listdir(os.path.join(ROOT, blackbox_dir))) + [
    "crates/portwarden/tests/e2e/probe_compat.rs",
]:
    text = read(os.path.join(ROOT, path)).decode()
    for block in re.findall(r'r#"\n?(modules:.*?)"#', text, re.S):
        put("blackbox_yml", block)
put("blackbox_yml", """modules:
  smtp_starttls:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      source_ip_address: 127.0.0.1
      query_response:
        - expect: "^220 (?P<host>[^ ]+)"
        - send: "EHLO ${host} $1 $$"
        - expect: "^250-STARTTLS"
        - send: "STARTTLS"
        - expect: "^220"
        - starttls: true
        - send: "QUIT"
      tls_config:
        server_name: mail.example.com
        min_version: TLS12
        max_version: TLS13
  tls_insecure:
    prober: tcp
    tcp:
      tls: true
      tls_config:
        insecure_skip_verify: true
  later:
    prober: tcp
    tcp:
      query_response:
        - expect_bytes: "x"
          labels: []
  dns:
    prober: dns
    dns:
      query_name: example.com
""")
for block in re.findall(r"```ya?ml\n(.*?)```", read(os.path.join(ROOT, "docs/metrics.md")).decode(), re.S):
    put("blackbox_yml", block)

# firewall_output: recorded tool output; the first byte picks the parser (see the target).
PARSER = {"nft_json": 0, "nft_text": 1, "nft_monitor": 2, "iptables_save": 3, "ufw": 4,
          "firewalld": 5, "windows": 6, "pfctl": 7}
def parser_of(name):
    if name.startswith("nft_monitor"): return "nft_monitor"
    if name.startswith("nft_") and name.endswith(".json"): return "nft_json"
    if name.startswith("nft_"): return "nft_text"
    if name.startswith("ipt_") or name.startswith("ufw_iptables"): return "iptables_save"
    if name.startswith("ufw_"): return "ufw"
    if name.startswith("firewalld_"): return "firewalld"
    if name.startswith("windows_"): return "windows"
    if name.startswith("macos_"): return "pfctl"
    return None
for path in sorted(glob.glob(os.path.join(DATA, "*"))):
    which = parser_of(os.path.basename(path))
    if which:
        put("firewall_output", bytes([PARSER[which]]) + read(path))
for line in read(os.path.join(DATA, "nft_monitor.txt")).decode().splitlines()[:4]:
    put("firewall_output", bytes([PARSER["nft_monitor"]]) + line.encode())
put("firewall_output", bytes([PARSER["nft_monitor"]]) + b"# new generation 5 by process 7350 (nft)")

# reply_parsers: first byte = preset index * 2 + STARTTLS (portwarden_probe::presets::ALL order).
PRESETS = ["smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "ftp", "ssh",
           "http", "https", "nntp", "nntps", "ldap", "ldaps", "xmpp", "redis", "memcached",
           "postgres", "mysql", "clamd"]
def reply(preset, data, starttls=False):
    put("reply_parsers", bytes([PRESETS.index(preset) * 2 + int(starttls)]) + data)
reply("smtp", b"220-mail.example.com ESMTP\r\n220 ready\r\n")
reply("smtp", b"220 mail.example.com ESMTP\r\n250-mail.example.com\r\n250-STARTTLS\r\n250 OK\r\n", True)
reply("pop3", b"+OK POP3 ready\r\n")
reply("imap", b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\na1 OK done\r\n", True)
reply("ftp", b"220-Welcome\r\nsome banner text\r\n220 ready\r\n")
reply("ssh", b"banner line\r\nSSH-2.0-OpenSSH_9.6p1 Debian\r\n")
reply("ssh", b"SSH-1.99-old\r\n")
reply("http", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
reply("nntp", b"200 news.example.com ready\r\n")
reply("ldap", bytes([0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]))
reply("ldap", bytes([0x30, 0x84, 0x00, 0x00, 0x00, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x30, 0x04, 0x00, 0x04, 0x00]))
handshake = b"\x0a8.0.36\x00" + b"\x01\x00\x00\x00" + b"abcdefgh" + b"\x00" + b"\xff\xf7" + b"\x21\x02\x00" + b"\x00" * 13
reply("mysql", len(handshake).to_bytes(3, "little") + b"\x00" + handshake)
err = b"\xff\x69\x04Host 'x' is not allowed to connect"
reply("mysql", len(err).to_bytes(3, "little") + b"\x00" + err)
reply("xmpp", b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'>", True)
reply("redis", b"+PONG\r\n")
reply("redis", b"-NOAUTH Authentication required.\r\n")
reply("memcached", b"VERSION 1.6.21\r\n")
reply("postgres", b"S")
reply("clamd", b"PONG\n")

# nagios_args: NUL-separated argv.
for argv in [
    ["portwarden", "check", "tcp", "-H", "127.0.0.1", "-p", "22", "-e", "SSH-", "-w", "1", "-c", "2"],
    ["portwarden", "check", "smtp", "-H", "mail.example.com", "-S", "-D", "30,14"],
    ["portwarden", "check", "tcp", "-H", "::1", "-p", "443", "--ssl", "-E", "-s", "GET /\\r\\n", "-q", "QUIT"],
    ["check_tcp", "-H", "host", "-p", "80", "-M", "crit", "-r", "warn", "-j"],
    ["/usr/lib/nagios/plugins/check_imap", "-H", "host"],
    ["portwarden", "check_nntp", "-H", "host", "-e", "205"],
    ["check_smtp", "-H", "host", "-C", "EHLO x", "-R", "^250", "-t", "5"],
    ["check_ssh", "-r", "OpenSSH_9.6", "host", "2222"],
    ["check_http", "-H", "host"],
    ["portwarden", "status", "--json"],
]:
    put("nagios_args", "\0".join(argv))

# probe_query: the query string, then the scrape-timeout header.
for q in ["target=127.0.0.1:22&module=tcp_connect\n10",
          "target=%5B%3A%3A1%5D%3A80&module=no_timeout&debug=true\n9.5",
          "target=example.com:443&module=http_2xx&hostname=example.com",
          "module=tcp_connect", "target=host:1&module=no_timeout\n-3"]:
    put("probe_query", q)
