//! Embeds haft's two-phase commit: one coordinator and two participants in
//! one process, over an in-memory queue, with logs that are durable at once.
//! Run with `cargo run --example embed_commit --no-default-features`.
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use haft::NodeId;
use haft::commit::{CommitOutput, Coordinator, CoordinatorConfig, CoordinatorRecord, Msg};
use haft::commit::{Part, Participant, ParticipantConfig};

type Queue = VecDeque<(NodeId, NodeId, Msg)>;

/// Carries out one output of `from`: appends its deltas to `from`'s log (here
/// a length: durable at once), queues its messages, and returns the log's end,
/// which the machine is then told is durable.
fn carry(from: NodeId, out: CommitOutput, logs: &mut BTreeMap<NodeId, u64>, q: &mut Queue) -> u64 {
    out.events.iter().for_each(|e| println!("{from:?}: {e:?}"));
    let end = out.end();
    logs.insert(from, end);
    let sends = out.send_now.into_iter().chain(out.send_after_persist);
    q.extend(sends.map(|(to, msg)| (from, to, msg)));
    end
}

fn main() {
    let wait = Duration::from_millis(100)..Duration::from_millis(200);
    let (vote_timeout, resend_every) = (wait.clone(), wait.clone());
    let config = CoordinatorConfig {
        vote_timeout,
        resend_every,
    };
    let (mut logs, mut queue) = (BTreeMap::new(), Queue::new());
    let (c, mut out) = (NodeId(0), CommitOutput::at(0));
    let mut coordinator = Coordinator::recover(c, config, CoordinatorRecord::default(), &mut out)
        .expect("a fresh record has incarnations left");
    let config = ParticipantConfig {
        uncertain_after: wait,
    };
    let mut participants: BTreeMap<NodeId, Participant> = [NodeId(1), NodeId(2)]
        .map(|me| (me, Participant::new(me, config.clone())))
        .into();

    // One transaction writes a key at each participant.
    let part = |key: &str| Part {
        reads: BTreeMap::new(),
        writes: [(key.as_bytes().to_vec().into(), Some("42".into()))].into(),
    };
    let plan = [(NodeId(1), part("apples")), (NodeId(2), part("pears"))].into();
    let txn = coordinator.begin(plan, None, &mut out).expect("a plan");
    coordinator.handle_persisted(carry(c, out, &mut logs, &mut queue));

    while let Some((from, to, msg)) = queue.pop_front() {
        let mut out = CommitOutput::at(logs.get(&to).copied().unwrap_or(0));
        if to == c {
            coordinator.handle_message(from, msg, &mut out);
            coordinator.handle_persisted(carry(c, out, &mut logs, &mut queue));
        } else {
            let participant = participants.get_mut(&to).expect("a participant");
            participant.handle_message(from, msg, &mut out);
            participant.handle_persisted(carry(to, out, &mut logs, &mut queue));
        }
    }
    let apples = participants[&NodeId(1)].committed(b"apples").unwrap();
    assert_eq!((apples.value.as_ref(), apples.version), (&b"42"[..], txn));
    assert!(coordinator.txns().is_empty()); // every participant acknowledged
}
