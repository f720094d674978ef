//! A demo directory: a few users with drive files of realistic sizes and thousands of activity records.

use crate::{
    export::sources::drive_dir,
    store::{ActivityRecord, Directory, StoreError, UserRecord},
};
use chrono::{Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::path::Path;

/// What the demo data holds.
#[derive(Debug, Clone)]
pub struct DemoData {
    /// The users created.
    pub users: Vec<UserRecord>,
    /// Drive files written, in all.
    pub files: usize,
    /// Bytes of drive files written, in all.
    pub bytes: u64,
    /// Activity records the demo users have, in all.
    pub activities: usize,
}

const USERS: [(&str, &str); 3] = [("adele", "Adele Vance"), ("megan", "Megan Bowen"), ("lee", "Lee Gu")];
const APPS: [&str; 4] = ["Outlook", "Teams", "OneDrive", "Word"];
const ACTIVITY_KINDS: [&str; 5] = ["signIn", "fileAccessed", "fileModified", "mailSent", "teamsMeetingJoined"];

/// Writes the demo users, their drives under `drives_root` and their activity records; the same `seed`
/// gives the same data.
pub fn generate(store: &dyn Directory, drives_root: &Path, tenant: &str, seed: u64) -> Result<DemoData, StoreError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let io = |e: std::io::Error| StoreError::Backend(format!("writing demo drive files: {e}"));
    let users: Vec<UserRecord> = USERS
        .iter()
        .map(|(id, name)| UserRecord {
            id: id.to_string(),
            user_principal_name: format!("{id}@contoso.example"),
            display_name: Some(name.to_string()),
            mail: Some(format!("{id}@contoso.example")),
        })
        .collect();
    store.upsert_users(tenant, &users)?;
    let (mut files, mut bytes, mut activities) = (0, 0, 0);
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).single().unwrap_or_else(Utc::now);
    for user in &users {
        let drive = drive_dir(drives_root, tenant, &user.id);
        // A document, a spreadsheet, some photos and a video: kilobytes to a few megabytes.
        let layout: [(&str, usize); 6] = [
            ("Documents/Quarterly report.docx", 48 * 1024),
            ("Documents/Budget 2026.xlsx", 180 * 1024),
            ("Pictures/Offsite/IMG_0001.jpg", 2 * 1024 * 1024 + 123),
            ("Pictures/Offsite/IMG_0002.jpg", 1800 * 1024),
            ("Videos/Demo.mp4", 6 * 1024 * 1024),
            ("notes.txt", 900),
        ];
        for (path, size) in layout {
            let target = drive.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let mut content = vec![0u8; size];
            rng.fill(&mut content[..]);
            std::fs::write(&target, &content).map_err(io)?;
            files += 1;
            bytes += size as u64;
        }
        let existing = store.count_activities(tenant, &user.id)?;
        if existing > 0 {
            activities += existing as usize; // A second run reuses the records of the first.
            continue;
        }
        let records: Vec<ActivityRecord> = (0..3000)
            .map(|i| ActivityRecord {
                user_id: user.id.clone(),
                occurred_at: start + Duration::minutes(i * 7 + rng.random_range(0..5)),
                kind: ACTIVITY_KINDS[rng.random_range(0..ACTIVITY_KINDS.len())].to_string(),
                detail: serde_json::json!({
                    "ipAddress": format!("10.{}.{}.{}", rng.random_range(0..255), rng.random_range(0..255), rng.random_range(1..255)),
                    "app": APPS[rng.random_range(0..APPS.len())],
                }),
            })
            .collect();
        activities += store.add_activities(tenant, &records)?;
    }
    Ok(DemoData { users, files, bytes, activities })
}
