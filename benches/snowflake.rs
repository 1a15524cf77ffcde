//! Snowflake id generation: one thread, and four threads contending for the same generator.
//! Run: `cargo bench --bench snowflake`.

use std::sync::Arc;
use std::thread;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vrooli::ids::Snowflake;

fn single_thread(c: &mut Criterion) {
    let ids = Snowflake::new(1).expect("worker id in range");
    let mut group = c.benchmark_group("snowflake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("next_id/1-thread", |b| {
        b.iter(|| std::hint::black_box(ids.next_id()))
    });
    group.finish();
}

fn contended(c: &mut Criterion) {
    const THREADS: usize = 4;
    const PER_THREAD: u64 = 10_000;
    let ids = Arc::new(Snowflake::new(1).expect("worker id in range"));
    let mut group = c.benchmark_group("snowflake");
    group.throughput(Throughput::Elements(THREADS as u64 * PER_THREAD));
    group.bench_function("next_id/4-threads-x-10k", |b| {
        b.iter(|| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let ids = Arc::clone(&ids);
                    thread::spawn(move || {
                        for _ in 0..PER_THREAD {
                            std::hint::black_box(ids.next_id());
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.join().expect("bench thread");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, single_thread, contended);
criterion_main!(benches);
