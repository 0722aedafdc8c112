"""Fetching an image URL without letting a request reach the server's own network (SSRF).

The host is resolved once, every address it resolves to is checked against the :class:`~.limits.UrlPolicy`, and
the connection goes to that checked address (a second DNS answer cannot swap in another one). Redirects are
followed by hand, each new target checked the same way. The download is capped in bytes and in total time.
"""
import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

from .errors import RequestError

REDIRECTS = (301, 302, 303, 307, 308)


def _address(text):
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone index
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def blocked_kind(address):
    """Why ``address`` is not a public unicast address (``None`` when it is)."""
    for kind in ("loopback", "link_local", "unspecified", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "non-global"


class UrlGuard:
    """Applies a :class:`~.limits.UrlPolicy` with the size and time caps of :class:`~.limits.Limits`."""

    def __init__(self, policy, limits):
        self.policy, self.limits = policy, limits
        self.hosts, self.networks = set(), []
        for entry in policy.allow:
            try:
                self.networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
            except ValueError:
                self.hosts.add(str(entry).strip().lower().rstrip("."))

    def check(self, url):
        """``(scheme, host, port, [addresses])`` for a URL this server may fetch; raises :class:`RequestError`."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RequestError(422, f"image URL {url!r} is not an http(s) URL with a host")
        if parts.username or parts.password:
            raise RequestError(422, "image URLs with credentials (user:password@) are not fetched")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise RequestError(422, f"image URL {url!r} has an invalid port") from None
        host = parts.hostname.lower().rstrip(".")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise RequestError(422, f"cannot fetch image URL {url}: cannot resolve {host} ({exc})") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if host not in self.hosts:
            for text in addresses:
                address = _address(text)
                kind = blocked_kind(address)
                if kind and not any(address in net for net in self.networks if net.version == address.version):
                    raise RequestError(422, f"image URL {url} refused: {host} resolves to {text}, a {kind} "
                                            "address; this server fetches public addresses only (allow a host "
                                            "with UrlPolicy(allow=[...]) / --url_allow)")
        return parts, host, port, addresses

    def fetch(self, url):
        """The bytes at ``url`` (status 200 only), following at most ``max_redirects`` checked redirects."""
        if not self.policy.enabled:
            raise RequestError(422, "this server does not fetch image URLs; send the image as base64")
        deadline = time.monotonic() + self.limits.url_timeout_s
        for _ in range(self.policy.max_redirects + 1):
            parts, host, port, addresses = self.check(url)
            response = self._open(url, parts, host, port, addresses, deadline)
            try:
                if response.status in REDIRECTS and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status != 200:
                    raise RequestError(422, f"image URL answered HTTP {response.status}: {url}")
                return self._read(url, response, deadline)
            finally:
                response.release_conn()
                response.close()
        raise RequestError(422, f"image URL redirected more than {self.policy.max_redirects} times")

    def _open(self, url, parts, host, port, addresses, deadline):
        import urllib3

        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        netloc = parts.netloc.rsplit("@", 1)[-1]
        last = None
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            timeout = urllib3.Timeout(connect=remaining, read=remaining)
            if parts.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1,
                                                   server_hostname=host, assert_hostname=host,
                                                   cert_reqs="CERT_REQUIRED")
            else:
                pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)
            try:
                return pool.urlopen("GET", target, headers={"Host": netloc, "Accept": "image/*"}, redirect=False,
                                    preload_content=False, retries=False)
            except urllib3.exceptions.HTTPError as exc:
                last = exc
        reason = type(last).__name__ if last else "timed out"
        raise RequestError(422, f"cannot fetch image URL {url}: {reason}")

    def _read(self, url, response, deadline):
        import urllib3

        cap = self.limits.max_image_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise RequestError(413, f"image at URL is larger than {cap} bytes")
        data = bytearray()
        try:
            while True:
                chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
                if not chunk:
                    return bytes(data)
                data.extend(chunk)
                if len(data) > cap:
                    raise RequestError(413, f"image at URL is larger than {cap} bytes")
                if time.monotonic() > deadline:
                    raise RequestError(422, f"image URL took longer than {self.limits.url_timeout_s} s: {url}")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RequestError(422, f"cannot fetch image URL {url}: {type(exc).__name__}") from None
