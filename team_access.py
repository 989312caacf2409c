"""Who may use the app, and whom a change is recorded under: sign-in for a team, and its warning.

A helper for the router and the pages, never a page itself (it lives beside app.py, as
wording.py does). Sign-in is Streamlit's own OpenID Connect support (`st.login`), switched on
by an `[auth]` section in `.streamlit/secrets.toml`; without one, the app is open to whoever
can reach it, which the default address (this machine only) keeps to its own user.
"""

from __future__ import annotations

import ipaddress
import sys

import streamlit as st
from streamlit import config as streamlit_config

# Printed once per server process, not once per page view.
_warned_about_address = False


def sign_in_configured() -> bool:
    """True when `.streamlit/secrets.toml` has an `[auth]` section."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all
        return False


def signed_in() -> bool:
    """True when a user has signed in (never while sign-in is not configured)."""
    return bool(st.user.get("is_logged_in", False))


def may_use_the_app() -> bool:
    """Everyone when sign-in is not configured; else only a signed-in user."""
    return not sign_in_configured() or signed_in()


def current_author() -> str | None:
    """Whom a change made in the app is recorded under: the signed-in user's e-mail or name, else None."""
    if not sign_in_configured() or not signed_in():
        return None
    return st.user.get("email") or st.user.get("name") or st.user.get("sub")


def require_sign_in() -> None:
    """Show only the sign-in, and stop, unless this visitor may use the app.

    The router calls it before any page; each page calls it too, because until some visit
    has run the router, Streamlit serves a URL named like a page file by running that file alone.
    """
    if not may_use_the_app():
        show_sign_in()
        st.stop()


def show_sign_in() -> None:
    """The only thing a visitor sees before signing in."""
    st.title("catseg")
    st.write("This dataset is shared by a team. Sign in to look at it, label photos or train models.")
    st.button("Sign in", type="primary", icon="🔑", key="access_sign_in", on_click=st.login)


def show_signed_in_user() -> None:
    """Who is signed in, with a way out, in the sidebar."""
    with st.sidebar:
        st.caption(f"Signed in as {current_author()}")
        st.button("Sign out", key="access_sign_out", on_click=st.logout)


def reachable_by_others(address: str | None) -> bool:
    """True unless `address` (Streamlit's server.address) is a loopback address; empty means every interface."""
    if not address:
        return True
    if address == "localhost":
        return False
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return True  # a host name: it may well resolve to a network address


def warn_when_open_to_the_network() -> None:
    """Say once, on the server's console, that anyone who can reach an open server can change the data."""
    global _warned_about_address
    address = streamlit_config.get_option("server.address")
    if _warned_about_address or not reachable_by_others(address) or sign_in_configured():
        return
    _warned_about_address = True
    where = f"address {address}" if address else "every network interface"
    print(f"warning: catseg listens on {where} without sign-in: anyone who can reach it can change or delete "
          "the dataset. Configure sign-in ([auth] in .streamlit/secrets.toml, see the README's \"Working as a "
          "team\") or set server.address = \"127.0.0.1\".", file=sys.stderr, flush=True)
