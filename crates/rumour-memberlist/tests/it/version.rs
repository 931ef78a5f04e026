//! Version negotiation as memberlist's `verifyProtocol` does it.

use rumour_memberlist::{Error, NodeState, PushNodeState, Vsn, verify_protocol};

fn node(name: &str, state: NodeState, vsn: [u8; 6]) -> PushNodeState {
    PushNodeState {
        name: name.into(),
        state,
        vsn: Vsn::from_bytes(&vsn).expect("six bytes"),
        ..PushNodeState::default()
    }
}

#[test]
fn a_cluster_of_memberlist_defaults_is_compatible() {
    let local = [node("a", NodeState::Alive, [1, 5, 2, 0, 0, 0])];
    let remote = [
        node("b", NodeState::Alive, [1, 5, 2, 0, 0, 0]),
        node("c", NodeState::Alive, [1, 5, 5, 0, 0, 0]),
    ];
    assert_eq!(verify_protocol(&local, &remote), Ok(()));
}

#[test]
fn a_member_speaking_below_what_another_alive_member_understands_is_refused() {
    let local = [node("a", NodeState::Alive, [2, 5, 2, 0, 0, 0])];
    let remote = [node("old", NodeState::Alive, [1, 5, 1, 0, 0, 0])];
    assert_eq!(
        verify_protocol(&local, &remote),
        Err(Error::IncompatibleVersion {
            node: "old".into(),
            what: "protocol",
            version: 1,
            min: 2,
            max: 5
        })
    );
}

#[test]
fn dead_members_do_not_narrow_the_range_but_their_own_version_is_still_checked() {
    let local = [node("a", NodeState::Alive, [1, 5, 2, 0, 0, 0])];
    // A dead member understanding only [3, 3] does not narrow the range (alive, it would: "a"
    // speaks 2)...
    let narrow_dead = [node("gone", NodeState::Dead, [3, 3, 3, 0, 0, 0])];
    let narrow_alive = [node("gone", NodeState::Alive, [3, 3, 3, 0, 0, 0])];
    assert!(verify_protocol(&local, &narrow_alive).is_err());
    assert_eq!(verify_protocol(&local, &narrow_dead), Ok(()));
    // ...but one speaking outside the alive members' range is refused, as in memberlist.
    let out_of_range = [node("gone", NodeState::Left, [1, 9, 7, 0, 0, 0])];
    assert!(verify_protocol(&local, &out_of_range).is_err());
}

#[test]
fn delegate_versions_are_negotiated_too() {
    let local = [node("a", NodeState::Alive, [1, 5, 2, 2, 4, 3])];
    let remote = [node("b", NodeState::Alive, [1, 5, 2, 0, 1, 1])];
    assert!(matches!(
        verify_protocol(&local, &remote),
        Err(Error::IncompatibleVersion {
            what: "delegate protocol",
            ..
        })
    ));
}

#[test]
fn alive_versions_with_a_zero_or_inverted_range_are_invalid() {
    let vsn = |b: [u8; 6]| Vsn::from_bytes(&b).expect("six bytes");
    assert!(Vsn::MEMBERLIST_DEFAULT.is_valid());
    assert!(!vsn([0, 5, 2, 0, 0, 0]).is_valid());
    assert!(!vsn([1, 0, 2, 0, 0, 0]).is_valid());
    assert!(!vsn([4, 3, 3, 0, 0, 0]).is_valid());
}
