//! concert-svc's binary; everything else is the library.

/// jemalloc, not glibc's allocator: about a tenth less CPU a saga (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    nats::runtime::main::<concert_svc::ConcertSvc>()
}
