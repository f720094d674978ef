//! A demo directory: a few users with drive files of realistic sizes and thousands of activity records.

use crate::{
    export::drive_files::drive_dir,
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

/// Why the demo's data could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The store refused the users or their activity.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A drive file could not be written.
    #[error("writing demo drive files: {0}")]
    DriveFiles(#[source] std::io::Error),
    /// The shop database could not be written.
    #[error("writing the demo shop database: {0}")]
    Shop(#[source] rusqlite::Error),
    /// The sources file could not be written.
    #[error("writing the demo sources file: {0}")]
    SourcesFile(#[source] std::io::Error),
}

/// Writes the demo users, their drives under `drives_root` and their activity records; the same `seed`
/// gives the same data.
pub fn generate(store: &dyn Directory, drives_root: &Path, tenant: &str, seed: u64) -> Result<DemoData, DemoError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let users: Vec<UserRecord> = USERS
        .iter()
        .map(|(id, name)| UserRecord {
            id: id.to_string(),
            user_principal_name: format!("{id}@contoso.example"),
            display_name: Some(name.to_string()),
            mail: Some(format!("{id}@contoso.example")),
            attributes: Default::default(),
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
                std::fs::create_dir_all(parent).map_err(DemoError::DriveFiles)?;
            }
            let mut content = vec![0u8; size];
            rng.fill(&mut content[..]);
            std::fs::write(&target, &content).map_err(DemoError::DriveFiles)?;
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

/// A demo shop database (SQLite, `demo-shop.db`) with the demo users' orders, and the sources file
/// (`sources.toml`) that makes exports read it: a data source at work with no service to install.
#[derive(Debug, Clone)]
pub struct DemoShop {
    /// The sources file.
    pub sources_file: std::path::PathBuf,
    /// Orders in the shop database, in all.
    pub orders: usize,
}

const ITEMS: [(&str, f64); 5] = [
    ("Surface Laptop", 1299.0),
    ("USB-C dock", 189.99),
    ("Headset", 79.5),
    ("Ergonomic mouse", 49.0),
    ("Monitor", 329.0),
];

/// A customer of the demo shop who is no user of the directory: the person of the demo's subject rights
/// request.
pub const CUSTOMER: (&str, &str, &str) = ("jordan.rivera@fabrikam.example", "Jordan", "Rivera");

/// Orders of [`CUSTOMER`] in the demo shop.
const CUSTOMER_ORDERS: usize = 5;

/// Writes (again) the demo shop database and its sources file into `state_dir`.
pub fn write_shop(state_dir: &Path, users: &[UserRecord], seed: u64) -> Result<DemoShop, DemoError> {
    let database = state_dir.join("demo-shop.db");
    let _ = std::fs::remove_file(&database);
    let mut conn = rusqlite::Connection::open(&database).map_err(DemoError::Shop)?;
    let tx = conn.transaction().map_err(DemoError::Shop)?;
    tx.execute_batch(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_email TEXT NOT NULL, placed_at TEXT NOT NULL, \
         item TEXT NOT NULL, quantity INTEGER NOT NULL, total REAL NOT NULL, gift_note TEXT);",
    )
    .map_err(DemoError::Shop)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Utc.with_ymd_and_hms(2025, 6, 1, 9, 0, 0).single().unwrap_or_else(Utc::now);
    let mut orders = 0;
    let buyers = users.iter().filter_map(|u| u.mail.clone().map(|mail| (mail, 12, u.display_name.clone()))).chain([(
        CUSTOMER.0.to_string(),
        CUSTOMER_ORDERS,
        Some(format!("{} {}", CUSTOMER.1, CUSTOMER.2)),
    )]);
    for (mail, count, display_name) in buyers {
        for n in 0..count as i64 {
            let (item, price) = ITEMS[rng.random_range(0..ITEMS.len())];
            let quantity = rng.random_range(1..4);
            let placed = start + Duration::days(n * 17 + rng.random_range(0..10));
            let gift =
                (n % 5 == 0).then(|| format!("Happy birthday, from {}", display_name.as_deref().unwrap_or("me")));
            tx.execute(
                "INSERT INTO orders (customer_email, placed_at, item, quantity, total, gift_note) VALUES (?1, ?2, ?3, ?4, \
                 ?5, ?6)",
                rusqlite::params![mail, placed.to_rfc3339(), item, quantity, price * f64::from(quantity), gift],
            )
            .map_err(DemoError::Shop)?;
            orders += 1;
        }
    }
    tx.commit().map_err(DemoError::Shop)?;
    let sources_file = state_dir.join("sources.toml");
    std::fs::write(
        &sources_file,
        "# The demo's data source: a shop database of orders, read at export time for the person exported. A\n\
         # request to erase a person's data clears their gift notes; the orders stay, kept by law.\n\
         [[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"sqlite:demo-shop.db\"\n\
         erase_url = \"sqlite:demo-shop.db\"\n\n[[source.query]]\nname = \
         \"orders\"\nsql = \"SELECT id, placed_at, item, quantity, total, gift_note FROM orders WHERE customer_email = \
         :mail ORDER BY placed_at\"\n\n[[source.erase]]\nname = \"gift_notes\"\nsql = \"UPDATE orders SET gift_note = NULL \
         WHERE customer_email = :mail AND gift_note IS NOT NULL\"\n\n[[source.retain]]\nname = \"orders\"\nsql = \"SELECT id \
         FROM orders WHERE customer_email = :mail\"\nreason = \"orders, 10 years (commercial law)\"\n",
    )
    .map_err(DemoError::SourcesFile)?;
    Ok(DemoShop { sources_file, orders })
}
