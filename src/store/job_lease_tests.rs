//! Batch job leases between two holders on one PostgreSQL database (skipped with a message
//! without `TRIAGE_TEST_DATABASE_URL`): one holder at a time, renewal keeps a lease, expiry and
//! release free it, a holder that lost its lease cannot renew it; SQLite always grants.

use super::test_db::{PgDb, TestDb};
use super::StoreConfig;
use std::time::Duration;

#[test]
fn one_holder_at_a_time_renewal_expiry_and_release() {
    let Some(db) = PgDb::new("job_leases") else {
        return;
    };
    let s = db.open(StoreConfig::default()).unwrap();
    assert!(s.shares_jobs());
    let long = 60_000;
    assert!(s.claim_job("j1", "a", long).unwrap());
    assert!(!s.claim_job("j1", "b", long).unwrap(), "a holds it");
    assert!(s.claim_job("j1", "a", long).unwrap(), "a claims again");
    assert!(s.renew_job("j1", "a", long).unwrap());
    assert!(!s.renew_job("j1", "b", long).unwrap(), "b never held it");
    // Another job is independent.
    assert!(s.claim_job("j2", "b", long).unwrap());

    // A short lease, renewed before it ends, keeps the job; unrenewed, it expires.
    assert!(s.claim_job("j3", "a", 300).unwrap());
    std::thread::sleep(Duration::from_millis(150));
    assert!(s.renew_job("j3", "a", 300).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!s.claim_job("j3", "b", 300).unwrap(), "renewed: still a's");
    std::thread::sleep(Duration::from_millis(250));
    assert!(s.claim_job("j3", "b", long).unwrap(), "expired: b takes it");
    assert!(
        !s.renew_job("j3", "a", long).unwrap(),
        "a lost it: its renewal fails, so it must stop writing"
    );
    assert!(!s.claim_job("j3", "a", long).unwrap());

    // Release frees at once; a release by a non-holder changes nothing.
    s.release_job("j1", "b").unwrap();
    assert!(!s.claim_job("j1", "b", long).unwrap());
    s.release_job("j1", "a").unwrap();
    assert!(s.claim_job("j1", "b", long).unwrap());
}

#[test]
fn concurrent_claims_grant_one() {
    let Some(db) = PgDb::new("job_lease_race") else {
        return;
    };
    let s = db.open(StoreConfig::default()).unwrap();
    for round in 0..20 {
        let job = format!("race{round}");
        let won: Vec<bool> = std::thread::scope(|scope| {
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let (s, job) = (&s, &job);
                    scope.spawn(move || s.claim_job(job, &format!("h{i}"), 60_000).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
    }
}

#[test]
fn sqlite_grants_every_claim() {
    for db in TestDb::all("job_leases_sqlite") {
        if !db.is_sqlite() {
            continue;
        }
        let s = db.open(StoreConfig::default());
        assert!(!s.shares_jobs());
        assert!(s.claim_job("j", "a", 1).unwrap());
        assert!(s.claim_job("j", "b", 1).unwrap());
        assert!(s.renew_job("j", "a", 1).unwrap());
        s.release_job("j", "a").unwrap();
    }
}
