"""The one address guard for URLs the server fetches on someone's say-so (SSRF).

Used by Competitor Intel (the pages a member lists) and by single sign-on (the issuer an owner
enters, and the discovery, key-set and token URLs that issuer names). A tenant must not be able
to make this server call into its own network, cloud metadata or loopback services.

* Only ``http``/``https``; no user name or password in the URL; the default ports or 8080/8443.
* The host name is resolved and refused when *any* address it resolves to is not a public one
  (private, loopback, link-local, shared, reserved, multicast; IPv4-mapped IPv6 unwrapped).
* `request_parts` pins the connection to the address that was checked (the host name travels
  in the ``Host`` header and, for https, as SNI and the certificate name), so a second DNS
  answer cannot point the request elsewhere. Callers follow redirects by hand (or not at all)
  and check every target again.
* Host names in an "allowed hosts" setting (``INTEL_ALLOWED_HOSTS``, ``SSO_ALLOWED_HOSTS``:
  comma-separated; tests, intranet demos) skip the address and port checks and are connected
  to by name.

No Reflex, no database: a pure check plus the request pieces.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

PUBLIC_PORTS = (80, 443, 8080, 8443)


class AddressRefused(Exception):
    """The URL may not be fetched: its scheme, credentials, port, or a non-public address.

    The message says why in words a person can act on.
    """


class HostUnresolved(AddressRefused):
    """The host name does not resolve (now): refused, but not known to be private."""


@dataclass(frozen=True)
class Target:
    """A URL that passed the guard, and the address the connection must go to."""

    url: str
    host: str
    port: int
    scheme: str
    address: str  # the checked IP ("" for an allowed test host: connect by name)


def allowed_hosts_parse(raw: str) -> frozenset[str]:
    """A comma-separated host list from a setting, as the guard compares names."""
    return frozenset(h.strip().lower().rstrip(".") for h in (raw or "").split(",") if h.strip())


def address_is_public(address: str) -> bool:
    """Whether an IP address is a public internet one (not private, loopback, link-local...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def url_check(url: str, *, allowed_hosts: Collection[str] = ()) -> Target:
    """Parse `url`, resolve its host and check every address it resolves to.

    Args:
        url: The address to fetch.
        allowed_hosts: Lower-case host names that skip the address check (a setting's list).

    Returns:
        The checked target; connect to `Target.address` (see `request_parts`).

    Raises:
        AddressRefused: not http(s), credentials in it, an odd port, a name that does not
            resolve, or an address that is not public.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise AddressRefused(f"The address is not a valid URL ({error}).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise AddressRefused("Only http and https addresses can be fetched.")
    if parts.username or parts.password:
        raise AddressRefused("Addresses with a user name or password are not fetched.")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise AddressRefused("The address has no host name.")
    port = port or (443 if scheme == "https" else 80)
    if host in allowed_hosts:
        return Target(url=url, host=host, port=port, scheme=scheme, address="")
    if port not in PUBLIC_PORTS:
        raise AddressRefused(f"Port {port} is not fetched; use a web address on port 80 or 443.")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise HostUnresolved(f"The host name {host} does not resolve ({error}).") from None
    addresses = sorted({info[4][0] for info in infos})
    if not addresses:
        raise HostUnresolved(f"The host name {host} does not resolve.")
    private = [a for a in addresses if not address_is_public(a)]
    if private:
        raise AddressRefused(
            f"{host} resolves to a private or local address ({private[0]}); only public web "
            "addresses are fetched."
        )
    return Target(url=url, host=host, port=port, scheme=scheme, address=addresses[0])


def request_parts(target: Target) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL to connect to, extra headers and httpx extensions for a checked target.

    The URL names the checked IP; ``Host`` and (https) ``sni_hostname`` keep the host name, so
    virtual hosting and certificate checks work as if the name had been used.
    """
    if not target.address:
        return target.url, {}, {}
    parts = urlsplit(target.url)
    literal = f"[{target.address}]" if ":" in target.address else target.address
    default = 443 if target.scheme == "https" else 80
    netloc = literal if target.port == default else f"{literal}:{target.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = target.host if target.port == default else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


__all__ = [
    "PUBLIC_PORTS",
    "AddressRefused",
    "HostUnresolved",
    "Target",
    "address_is_public",
    "allowed_hosts_parse",
    "request_parts",
    "url_check",
]
