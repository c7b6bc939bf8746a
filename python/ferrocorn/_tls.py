"""What the Rust TLS layer (rustls) asks of Python's ``ssl`` module.

ferrocorn terminates TLS with rustls, not OpenSSL. Two settings are defined in OpenSSL's terms,
so OpenSSL itself (through ``ssl``) interprets them and rustls is told the result:

* ``ciphers``: an OpenSSL cipher string. ``resolve_ciphers`` lets OpenSSL expand it and returns
  the suite names; the Rust side keeps those that rustls implements.
* ``ssl_context``: a hook that receives ``default_ssl_context_factory`` and may adjust the
  ``ssl.SSLContext`` it returns. ``run_hook`` gives it a context that records what is done to it,
  then reports the parts rustls can honour, and names the parts it cannot so the server refuses
  to start instead of silently ignoring them.
"""

import ssl
import types

# Settings a hook commonly reads from its first argument (Gunicorn passes its Config object).
CONF_KEYS = ("certfile", "keyfile", "ca_certs", "cert_reqs", "ciphers", "ssl_version",
             "suppress_ragged_eofs", "do_handshake_on_connect")


def resolve_ciphers(spec):
    """The suite names OpenSSL selects for ``spec``; raises ``ssl.SSLError`` when it selects none."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers(spec)
    return [c["name"] for c in ctx.get_ciphers()]


class _RecordingContext(ssl.SSLContext):
    """An SSLContext that remembers the calls whose effect rustls must reproduce."""

    def _note(self, what):
        self.__dict__.setdefault("_ferrocorn_unsupported", []).append(what)

    def load_cert_chain(self, certfile, keyfile=None, password=None):
        super().load_cert_chain(certfile, keyfile, password)
        if password is not None:
            self._note("load_cert_chain(password=...): rustls cannot read encrypted keys")
        self.__dict__["_ferrocorn_chain"] = (str(certfile), None if keyfile is None else str(keyfile))

    def load_verify_locations(self, cafile=None, capath=None, cadata=None):
        super().load_verify_locations(cafile, capath, cadata)
        cas = self.__dict__.setdefault("_ferrocorn_cas", [])
        if cafile is not None:
            cas.append(("file", str(cafile)))
        if cadata is not None:
            cas.append(("pem", cadata) if isinstance(cadata, str) else ("der", bytes(cadata)))
        if capath is not None:
            self._note("load_verify_locations(capath=...): give a CA bundle file instead")

    def set_ciphers(self, spec):
        super().set_ciphers(spec)
        self.__dict__["_ferrocorn_ciphers_set"] = True

    def set_alpn_protocols(self, protocols):
        super().set_alpn_protocols(protocols)
        self.__dict__["_ferrocorn_alpn"] = list(protocols)

    def load_default_certs(self, purpose=ssl.Purpose.CLIENT_AUTH):
        self._note("load_default_certs(): rustls here trusts only the CAs given explicitly")
        super().load_default_certs(purpose)

    def set_default_verify_paths(self):
        self._note("set_default_verify_paths(): rustls here trusts only the CAs given explicitly")
        super().set_default_verify_paths()

    def load_dh_params(self, path):
        self._note("load_dh_params(): rustls has no finite-field Diffie-Hellman")
        super().load_dh_params(path)

    def set_ecdh_curve(self, name):
        self._note("set_ecdh_curve(): rustls chooses among X25519, P-256 and P-384 itself")
        super().set_ecdh_curve(name)

    def set_servername_callback(self, callback):
        self._note("set_servername_callback(): SNI callbacks cannot run inside rustls")
        super().set_servername_callback(callback)

    def set_npn_protocols(self, protocols):
        self._note("set_npn_protocols(): NPN is not supported")

    @property
    def sni_callback(self):
        return super().sni_callback

    @sni_callback.setter
    def sni_callback(self, callback):
        if callback is not None:
            self._note("sni_callback: SNI callbacks cannot run inside rustls")
        ssl.SSLContext.sni_callback.__set__(self, callback)

    @property
    def keylog_filename(self):
        return super().keylog_filename

    @keylog_filename.setter
    def keylog_filename(self, name):
        if name is not None:
            self._note("keylog_filename: key logging is not supported")
        ssl.SSLContext.keylog_filename.__set__(self, name)


def _default_factory(settings):
    def default_ssl_context_factory():
        # What Gunicorn's factory does, minus the system CA store (see load_default_certs).
        ctx = _RecordingContext(ssl.PROTOCOL_TLS_SERVER)
        if settings.get("ca_certs"):
            ctx.load_verify_locations(cafile=settings["ca_certs"])
        ctx.load_cert_chain(certfile=settings["certfile"], keyfile=settings.get("keyfile"))
        ctx.verify_mode = settings.get("cert_reqs", 0)
        if settings.get("ciphers"):
            ctx.set_ciphers(settings["ciphers"])
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx
    return default_ssl_context_factory


def run_hook(hook, settings):
    """Calls ``hook(conf, factory)`` and describes the returned context as a dict of plain values."""
    conf = types.SimpleNamespace(**{k: settings.get(k) for k in CONF_KEYS})
    conf.is_ssl = True
    ctx = hook(conf, _default_factory(settings))
    if not isinstance(ctx, ssl.SSLContext):
        raise TypeError("ssl_context must return an ssl.SSLContext, got %s" % type(ctx).__name__)
    if not isinstance(ctx, _RecordingContext):
        raise TypeError("ssl_context returned an SSLContext it built itself; ferrocorn can only read "
                        "settings off the context made by default_ssl_context_factory()")
    d = ctx.__dict__
    unsupported = list(d.get("_ferrocorn_unsupported", []))
    if ctx.post_handshake_auth:
        unsupported.append("post_handshake_auth: TLS 1.3 post-handshake authentication")
    certfile, keyfile = d.get("_ferrocorn_chain", (settings["certfile"], settings.get("keyfile")))
    no13 = bool(ctx.options & ssl.OP_NO_TLSv1_3)
    no12 = bool(ctx.options & ssl.OP_NO_TLSv1_2)
    return {
        "certfile": certfile,
        "keyfile": keyfile,
        "cas": list(d.get("_ferrocorn_cas", [])),
        "verify_mode": int(ctx.verify_mode),
        "minimum_version": int(ctx.minimum_version),
        "maximum_version": int(ctx.maximum_version),
        "no_tls12": no12,
        "no_tls13": no13,
        "ciphers": [c["name"] for c in ctx.get_ciphers()] if d.get("_ferrocorn_ciphers_set") else None,
        "alpn": d.get("_ferrocorn_alpn"),
        "unsupported": unsupported,
    }
