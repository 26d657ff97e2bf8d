"""Signature v1: the document's test vectors, and signing and verifying agree."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from openccs.api.signature import sign, string_to_sign, verify

KEY = "Gu5t9xGARNpq86cd98joQYCN3Cozk1qA"
DOC_PARAMS = {
    "Action": "DescribeInstances",
    "InstanceIds.0": "ins-09dx96dg",
    "Nonce": "11886",
    "Region": "ap-guangzhou",
    "SecretId": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA",
    "Timestamp": "1465185768",
}


def test_document_vector_hmac_sha256() -> None:
    params = {**DOC_PARAMS, "SignatureMethod": "HmacSHA256"}
    assert (
        sign(KEY, "GET", "cvm.api.qcloud.com", params, "HmacSHA256")
        == "0EEm/HtGRr/VJXTAD9tYMth1Bzm3lLHz5RCDv1GdM8s="
    )


def test_document_vector_hmac_sha1() -> None:
    params = {**DOC_PARAMS, "SignatureMethod": "HmacSHA1"}
    assert (
        sign(KEY, "GET", "cvm.api.qcloud.com", params, "HmacSHA1") == "nPVnY6njQmwQ8ciqbPl5Qe+Oru4="
    )


def test_string_to_sign_uses_raw_values_sorted_names_and_dots_for_underscores() -> None:
    s = string_to_sign("post", "h:1", {"b": "x y", "Placement_Zone": "CN_GZ", "Signature": "z"})
    assert s == "POSTh:1/v2/index.php?Placement.Zone=CN_GZ&b=x y"


def test_post_values_starting_with_at_are_not_signed() -> None:
    # The official client skips them for POST (file uploads), so the server must too.
    a = sign(KEY, "POST", "h", {"a": "1", "f": "@file"})
    assert a == sign(KEY, "POST", "h", {"a": "1"})
    assert sign(KEY, "GET", "h", {"a": "1", "f": "@file"}) != a


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_.", min_size=1, max_size=12)
values = st.text(min_size=0, max_size=30).filter(lambda v: "\x00" not in v)


@settings(max_examples=300, deadline=None)
@given(
    params=st.dictionaries(names, values, min_size=1, max_size=12),
    method=st.sampled_from(["GET", "POST"]),
    sig_method=st.sampled_from(["HmacSHA1", "HmacSHA256"]),
    key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=40),
)
def test_sign_then_verify_agree_through_the_wire_encoding(
    params: dict[str, str], method: str, sig_method: str, key: str
) -> None:
    params = {k: v for k, v in params.items() if k != "Signature"}
    params["SignatureMethod"] = sig_method
    params["Signature"] = sign(KEY + key, method, "127.0.0.1:7443", params, sig_method)
    # What the server sees after form/query decoding.
    received = dict(parse_qsl(urlencode(params), keep_blank_values=True))
    assert verify(KEY + key, method, "127.0.0.1:7443", received, received["Signature"])
    # Another key, host or method does not verify.
    assert not verify(KEY + key + "x", method, "127.0.0.1:7443", received, received["Signature"])
    assert not verify(KEY + key, method, "127.0.0.1:7444", received, received["Signature"])
    other = "POST" if method == "GET" else "GET"
    signed_as_other = sign(KEY + key, other, "127.0.0.1:7443", params, sig_method)
    if signed_as_other != params["Signature"]:
        assert not verify(KEY + key, other, "127.0.0.1:7443", received, received["Signature"])


@settings(max_examples=100, deadline=None)
@given(params=st.dictionaries(names, values, min_size=1, max_size=8), extra=values)
def test_a_changed_value_fails_verification(params: dict[str, str], extra: str) -> None:
    params.pop("Signature", None)
    sig = sign(KEY, "GET", "h", params)
    name = sorted(params)[0]
    changed = {**params, name: params[name] + "x" + extra}
    assert not verify(KEY, "GET", "h", changed, sig)
