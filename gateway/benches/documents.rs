//! Extraction cost of an XDM package: a ~200 KB package (CI-SIS PDF-in-CDA, N1) timed with
//! criterion, and the peak heap of one extraction of it and of a ~20 MB package, measured with
//! a counting global allocator (live bytes, high-water mark since reset).
//!
//! Run: `cargo bench -p gateway --bench documents`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use gateway::documents::extract;

#[path = "../tests/documents_support/mod.rs"]
mod documents_support;

use documents_support::*;

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A message carrying an XDM package whose CDA embeds a PDF of `pdf_size` bytes.
fn message_with_package(pdf_size: usize) -> (Vec<u8>, usize) {
    let patient = patient_a();
    let small = base64(&fake_pdf(4000));
    let big = base64(&fake_pdf(pdf_size));
    let cda = cda(CdaKind::PdfN1, &patient, "1.2.250.1.999.1.8.1")
        .replace(&small, &big)
        .into_bytes();
    let entry = Entry::cda(
        "Document01",
        "DOC0001.XML",
        cda.clone(),
        "1.2.250.1.999.1.8.1",
        &patient,
        CdaKind::PdfN1,
    );
    let metadata = metadata(&patient.cx(), &[entry]);
    let zip = xdm_zip(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", metadata.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &cda),
    ]);
    let zip_len = zip.len();
    (
        message(
            &[("X-MSS-CODECDA", "11490-0"), ("X-MSS-INS", "O")],
            &[("IHE_XDM.ZIP", "application/zip", &zip)],
        ),
        zip_len,
    )
}

fn measure(label: &str, pdf_size: usize) -> Vec<u8> {
    let (mail, zip_len) = message_with_package(pdf_size);
    let policy = policy();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let started = Instant::now();
    let extraction = extract(&mail, source(), &policy).expect("package is valid");
    let elapsed = started.elapsed();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert_eq!(extraction.requests.len(), 1);
    println!(
        "{label}: zip {} KB, message {} KB, CDA {} KB; one extraction {:.2} ms, peak heap above baseline {:.1} MB ({:.1}x the message)",
        zip_len / 1024,
        mail.len() / 1024,
        extraction.requests[0].document.len() / 1024,
        elapsed.as_secs_f64() * 1000.0,
        peak as f64 / 1_048_576.0,
        peak as f64 / mail.len() as f64,
    );
    mail
}

fn bench(criterion: &mut Criterion) {
    // ~200 KB PDF → ~270 KB CDA (base64) → ~205 KB zip (base64 of random bytes deflates to ~75 %).
    let mail = measure("200 KB package", 200 * 1024);
    measure("20 MB package", 15 * 1024 * 1024);
    let policy = policy();
    criterion.bench_function("extract 200 KB XDM (N1 CDA + PDF)", |bencher| {
        bencher.iter(|| extract(&mail, source(), &policy).expect("package is valid"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
