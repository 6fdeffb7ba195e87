//! The seed's Step 1 and 2 in Rust: bind the five callbacks, then drive scripted calls through the
//! call core with no network (see `callscope::demo::script`), so all five fire.
//!
//! Run with `cargo run --example bind_callbacks`.

use callscope::kit::CallKit;

fn main() {
    // Step 1 and 2: bind the callbacks, each with a closure that logs what it gets.
    let kit = CallKit::builder()
        .user("alice")
        .before_calling(|call_type, error| {
            let error = error.map_or_else(|| "null".to_owned(), ToString::to_string);
            println!(
                "[Callkit Demo] beforeCalling: {} {error}",
                call_type.as_str()
            );
        })
        .after_calling(|summary| {
            println!(
                "[Callkit Demo] afterCalling: {} ({} ms, reason {})",
                summary.call_id, summary.duration_millis, summary.reason
            );
        })
        .on_minimized(|old, new| {
            println!(
                "[Callkit Demo] onMinimized: {} -> {}",
                old.as_str(),
                new.as_str()
            );
        })
        .kicked_out(|info| println!("[Callkit Demo] handleKickedOut: by {}", info.by))
        .status_changed(|change| {
            println!(
                "[Callkit Demo] handleStatusChanged: {} -> {}",
                change.old_status, change.new_status
            );
        })
        .build();

    // Dial bob, bob answers, minimize, restore, hang up; then carol calls and a log-in of alice
    // on another device kicks this session out.
    callscope::demo::play(&kit);

    println!(
        "{} timeline entries recorded; `kit.timeline()` holds every one.",
        kit.timeline().len()
    );
}
