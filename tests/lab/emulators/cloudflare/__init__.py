"""A fake Cloudflare API v4 (DNS records only), for the lab. See ``__main__.py``."""
