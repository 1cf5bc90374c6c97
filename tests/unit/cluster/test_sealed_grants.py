"""Signed direct-put grants (Kubernetes): who may make them, what they open, and for how long."""

from __future__ import annotations

import pytest

from airflow_ais_etl.cluster.directput import PutTarget
from airflow_ais_etl.cluster.gatewaypaths import Refusal
from airflow_ais_etl.cluster.sealedgrants import (
    LIFETIME_SECONDS,
    RENEW_SECONDS,
    SealedGrants,
    SealedTokens,
    TokenRefused,
    open_token,
    seal,
)

KEY = b"k" * 32
NOW = 1_900_000_000


def test_a_sealed_token_opens_its_bucket_until_it_expires() -> None:
    token = seal(KEY, "b-1", "s3://data/out", NOW + 10)
    assert open_token(KEY, token, "b-1", NOW).url == "s3://data/out"
    assert open_token(KEY, token, "b-1", NOW + 9.9).url == "s3://data/out"
    with pytest.raises(TokenRefused, match="expired 0 s ago by this node's clock"):
        open_token(KEY, token, "b-1", NOW + 10)
    assert open_token(KEY, token, "b-1", None).url == "s3://data/out"  # a commit: the start was checked


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda t: seal(b"another key", "b-1", "/data/out", NOW + 60), "not made with this ETL's put key"),
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "not made with this ETL's put key"),
        (lambda t: t.replace("s1.", "s2.", 1), "not made with this ETL's put key"),
        (lambda t: "", "carries no grant"),
        (lambda t: "s1..", "not made with this ETL's put key"),
        (lambda t: t + "ü", "not made with this ETL's put key"),  # a query decodes to any text
        (lambda t: seal(KEY, "b-2", "/data/out", NOW + 60), "is for bucket 'b-2', not 'b-1'"),
    ],
    ids=["other-key", "changed-mac", "other-version", "empty", "no-payload", "not-ascii", "other-bucket"],
)
def test_forged_or_foreign_tokens_open_nothing(mutate, why: str) -> None:
    token = mutate(seal(KEY, "b-1", "/data/out", NOW + 60))
    with pytest.raises(TokenRefused, match=why):
        open_token(KEY, token, "b-1", NOW)


def test_a_payload_changed_to_another_url_breaks_the_signature() -> None:
    import base64
    import json

    token = seal(KEY, "b-1", "/data/out", NOW + 60)
    _, payload, mac = token.split(".")
    forged = (
        base64.urlsafe_b64encode(json.dumps({"b": "b-1", "u": "/etc", "x": NOW + 60}).encode())
        .decode()
        .rstrip("=")
    )
    with pytest.raises(TokenRefused, match="put key"):
        open_token(KEY, f"s1.{forged}.{mac}", "b-1", NOW)


def test_the_gateway_side_answers_with_refusals_that_say_why() -> None:
    clock = [float(NOW)]
    grants = SealedGrants(KEY, clock=lambda: clock[0])
    query = f"uuid={seal(KEY, 'b-1', '/data/out', NOW + 5)}"
    assert grants.url_of(query, "b-1").url == "/data/out"
    with pytest.raises(Refusal) as refused:
        grants.url_of(query, "b-9")
    assert refused.value.status == 403
    assert "bucket 'b-9'" in refused.value.text
    clock[0] += 60
    with pytest.raises(Refusal) as expired:
        grants.url_of(query, "b-1")
    assert expired.value.status == 403
    assert "expired" in expired.value.text
    assert grants.at_commit(query, "b-1").url == "/data/out"  # an upload begun in time is committed
    with pytest.raises(Refusal) as no_token:
        grants.url_of("other=1", "b-1")
    assert no_token.value.status == 403
    assert "carries no grant" in no_token.value.text


def test_a_job_renews_its_token_and_every_token_lives_long_enough() -> None:
    clock = [float(NOW)]
    tokens = SealedTokens(KEY, "b-1", "/data/out", clock=lambda: clock[0])
    first = tokens.current()
    clock[0] += RENEW_SECONDS - 1
    assert tokens.current() == first
    clock[0] += 1
    second = tokens.current()
    assert second != first
    # each token outlives its successor's making by far: an object sent just before a renewal still lands
    assert open_token(KEY, first, "b-1", clock[0] + LIFETIME_SECONDS - RENEW_SECONDS - 1).url == "/data/out"
    assert open_token(KEY, second, "b-1", clock[0] + LIFETIME_SECONDS - 1).url == "/data/out"
    with pytest.raises(TokenRefused, match="expired"):
        open_token(KEY, second, "b-1", clock[0] + LIFETIME_SECONDS)


def test_a_token_carries_the_jobs_umask_for_what_the_gateway_creates() -> None:
    assert open_token(KEY, seal(KEY, "b-1", "/x", NOW + 60, 0o027), "b-1", NOW) == PutTarget("/x", 0o027)
    assert open_token(KEY, seal(KEY, "b-1", "/x", NOW + 60), "b-1", NOW) == PutTarget("/x", None)
    tokens = SealedTokens(KEY, "b-1", "/x", 0o002, clock=lambda: float(NOW))
    assert open_token(KEY, tokens.current(), "b-1", NOW).umask == 0o002


def test_an_empty_key_makes_no_token() -> None:
    with pytest.raises(ValueError, match="empty"):
        seal(b"", "b-1", "/x", NOW)
    with pytest.raises(TokenRefused):
        open_token(b"", seal(KEY, "b-1", "/x", NOW + 60), "b-1", NOW)


def test_a_revoked_grant_opens_nothing_and_a_revoke_waits_for_objects_being_named() -> None:
    import threading

    from airflow_ais_etl.cluster.sealedgrants import read_token, revocation_proof

    grants = SealedGrants(KEY, clock=lambda: float(NOW))
    tokens = SealedTokens(KEY, "b-1", "/x", clock=lambda: float(NOW))
    query = f"uuid={tokens.current()}"
    assert read_token(KEY, tokens.current(), "b-1", NOW)[1] == tokens.grant_id
    with pytest.raises(Refusal) as forged:
        grants.revoke(tokens.grant_id, revocation_proof(b"another key", tokens.grant_id))
    assert forged.value.status == 403
    assert grants.url_of(query, "b-1").url == "/x"  # a forged revocation changed nothing

    revoked = threading.Event()
    with grants.held():  # an object is being named: the revoke waits for it
        grants.at_commit(query, "b-1")
        revoker = threading.Thread(
            target=lambda: (
                grants.revoke(tokens.grant_id, revocation_proof(KEY, tokens.grant_id)),
                revoked.set(),
            )
        )
        revoker.start()
        assert not revoked.wait(0.3)
    assert revoked.wait(10)
    revoker.join(10)
    for check, status in ((grants.url_of, 403), (grants.at_commit, 409)):
        with pytest.raises(Refusal) as refused:
            check(query, "b-1")
        assert refused.value.status == status
        assert "the job ended (grant revoked)" in refused.value.text
    other = SealedTokens(KEY, "b-1", "/x", clock=lambda: float(NOW))  # another job's grant still opens
    assert grants.url_of(f"uuid={other.current()}", "b-1").url == "/x"
