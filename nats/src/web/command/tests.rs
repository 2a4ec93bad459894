//! tests: the idempotency key and request id, as the extractor and `Once` see them.

use super::*;

fn key(k: &str) -> Result<CommandRequest, Problem> {
    key_in(k, &InFlight::default())
}

fn key_in(k: &str, in_flight: &InFlight) -> Result<CommandRequest, Problem> {
    let (mut parts, ()) = axum::http::Request::post("/wallet/charge")
        .header(HEADER, k)
        .extension(in_flight.clone())
        .body(())
        .unwrap()
        .into_parts();
    futures::executor::block_on(CommandRequest::from_request_parts(&mut parts, &()))
}

#[test]
fn keys_are_one_to_255_visible_ascii_characters() {
    assert!(key("k-1").is_ok());
    assert!(key(&"k".repeat(MAX_KEY)).is_ok());
    for bad in ["", "a b", &"k".repeat(MAX_KEY + 1)] {
        let refused = key(bad).err().expect("refused");
        assert_eq!(refused.kind, INVALID_KEY, "{bad:?}");
    }
}

#[test]
fn a_key_in_flight_is_refused_until_its_first_request_is_answered() {
    let (in_flight, ann) = (InFlight::default(), UserId("ann".into()));
    let claim = |user: &UserId| key_in("k", &in_flight).unwrap().claim(user, b"{}");
    let (_, first) = claim(&ann).unwrap();
    assert_eq!(claim(&ann).err().expect("in flight").kind, KEY_IN_USE);
    // Another user's key of the same text is theirs.
    assert!(claim(&UserId("bob".into())).is_ok());
    drop(first);
    assert!(claim(&ann).is_ok());
}
