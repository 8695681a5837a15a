"""Serve acme2certifier (PyPI ``acme2certifier``) for the lab: its WSGI application on 127.0.0.1:<port>.

    serve.py --config <lab>/acme2certifier/acme_srv.cfg --port P --dns-port N

Why a launcher and not the package's own ``share/acme2certifier_wsgi.py``: that script's ``__main__`` binds
0.0.0.0:80 (acme-and-dns.md §6.1), and the package looks for its configuration in /var/www/acme2certifier or
/opt/acme2certifier. Here:

* the configuration is the lab's file, named by ``ACME_SRV_CONFIGFILE`` (acme_srv/helpers/config.py
  ``load_config`` reads that variable before any default path), and relative paths in it resolve against
  ``ACME2CERTIFIER_BASE_DIR`` = the file's directory; nothing is read from or written to /var/www or /opt;
* the server is ``wsgiref.simple_server.make_server`` on 127.0.0.1 only, on the port the lab picked;
* DNS-01 is validated against the lab's BIND primary on its high port. acme2certifier's ``dns_server_list`` takes
  IP addresses only and queries them on port 53 (acme-and-dns.md §6.1: "port 53 only"); its TXT lookup makes a
  fresh ``dns.resolver.Resolver(configure=False)`` and sets ``nameservers`` to those strings, and dnspython sends
  queries for a plain-address nameserver to the resolver's ``port`` attribute, which ``reset()`` sets to 53.
  This process therefore wraps ``BaseResolver.reset`` so that every resolver created *in this process* uses
  ``--dns-port`` instead. Nothing listens on or binds port 53, and no other process is affected.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def use_dns_port(port: int) -> None:
    """Make every dnspython resolver of this process send its queries to ``port`` (see the module docstring)."""
    import dns.resolver

    original_reset = dns.resolver.BaseResolver.reset

    def reset(self) -> None:
        original_reset(self)
        self.port = port

    dns.resolver.BaseResolver.reset = reset
    # The module-level default resolver may already exist; make it follow too.
    dns.resolver.reset_default_resolver()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the lab's acme_srv.cfg")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--dns-port", type=int, required=True, help="port of the DNS servers in dns_server_list")
    args = parser.parse_args(argv)

    config = Path(args.config).resolve()
    if not config.is_file():
        print(f"serve.py: configuration {config} does not exist", file=sys.stderr)
        return 2
    os.environ["ACME_SRV_CONFIGFILE"] = str(config)
    os.environ["ACME2CERTIFIER_BASE_DIR"] = str(config.parent)
    use_dns_port(args.dns_port)

    # Importing the WSGI module loads the configuration and checks the database (boot_acme_http_stack), so it
    # must happen after the environment above is set.
    from wsgiref.simple_server import make_server

    from acme2certifier.acme_srv.version import __version__
    from acme2certifier.share import acme2certifier_wsgi as a2c

    server = make_server("127.0.0.1", args.port, a2c.application, handler_class=a2c.get_handler_cls())
    print(f"acme2certifier {__version__} serving http://127.0.0.1:{args.port}/directory "
          f"(config {config}, DNS port {args.dns_port})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
