use std::collections::HashSet;
use std::sync::Arc;

use vrooli::ids::Snowflake;
use vrooli::ids::snowflake::decompose;

#[test]
fn ids_are_unique_and_ordered_under_contention() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 50_000;
    let ids = Arc::new(Snowflake::new(42).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let ids = Arc::clone(&ids);
            std::thread::spawn(move || (0..PER_THREAD).map(|_| ids.next_id()).collect::<Vec<_>>())
        })
        .collect();
    let per_thread: Vec<Vec<i64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let mut all = HashSet::new();
    for ids in &per_thread {
        // Each thread sees strictly increasing ids.
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        for id in ids {
            assert!(all.insert(*id), "duplicate id {id}");
            assert!(*id > 0);
            assert_eq!(decompose(*id).worker_id, 42);
        }
    }
    assert_eq!(all.len(), THREADS * PER_THREAD);
}

#[test]
fn ids_follow_the_clock() {
    let ids = Snowflake::new(3).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let id = ids.next_id();
    let parts = decompose(id);
    assert!(
        parts.unix_ms >= now && parts.unix_ms < now + 5_000,
        "{parts:?} vs {now}"
    );
    let later = ids.next_id_at(now + 60_000);
    assert!(later > id);
    assert_eq!(decompose(later).unix_ms, now + 60_000);
}

#[test]
fn two_workers_never_collide() {
    let a = Snowflake::new(1).unwrap();
    let b = Snowflake::new(2).unwrap();
    let t = 1_700_000_000_000;
    let from_a: HashSet<i64> = (0..5000).map(|_| a.next_id_at(t)).collect();
    assert!(
        (0..5000)
            .map(|_| b.next_id_at(t))
            .all(|id| !from_a.contains(&id))
    );
}
