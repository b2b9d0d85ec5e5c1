//! Deposits per second into dmp-sim over loopback (mutual TLS, MTOM, signed VIHF, fsynced
//! store), with 1 and 8 concurrent clients.
//!
//! `cargo bench -p dmp-connector --bench deposit`

#[path = "../tests/xds_support/mod.rs"]
mod xds_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmp_connector::sim::Faults;

fn deposits(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tmp");
    let sim = runtime.block_on(xds_support::start_sim(dir.path(), Faults::default()));
    let endpoint = sim.endpoint();
    let counter = Arc::new(AtomicU32::new(0));
    let mut group = c.benchmark_group("deposit");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for clients in [1usize, 8] {
        // One client (connection pool) per worker, as the connector's workers would share one.
        let client = Arc::new(xds_support::labo_b_client(&endpoint));
        group.throughput(Throughput::Elements(clients as u64));
        group.bench_function(format!("{clients}_clients"), |b| {
            b.to_async(&runtime).iter_custom(|iterations| {
                let client = client.clone();
                let counter = counter.clone();
                async move {
                    let start = Instant::now();
                    let mut tasks = Vec::new();
                    for _ in 0..clients {
                        let client = client.clone();
                        let counter = counter.clone();
                        tasks.push(tokio::spawn(async move {
                            for _ in 0..iterations {
                                let n = counter.fetch_add(1, Ordering::Relaxed);
                                let request = xds_support::request(n, 2_990_175_123_001);
                                client
                                    .provide_and_register(&request)
                                    .await
                                    .expect("deposit");
                            }
                        }));
                    }
                    for task in tasks {
                        task.await.expect("task");
                    }
                    start.elapsed()
                }
            });
        });
    }
    group.finish();
    runtime.block_on(sim.shutdown());
}

criterion_group!(benches, deposits);
criterion_main!(benches);
