//! Images (issue 12, item 21): HTML and feed imports keep each image with
//! its alt text and caption, copied into necmail's media store and served
//! from `NECMAIL_PUBLIC_URL/media/…`; an image that cannot be copied is left
//! out with a warning, and the import still succeeds. Markdown images by
//! reference, and images added in `report edit` or on the web admin's edit
//! page, go through the same copy.

use necmail::admin::Role;
use necmail::reports::{MediaType, NewMedia, ReportRef};

use crate::admin::Admin;
use crate::admin_people::text;
use crate::report_corrections::script;

use crate::support::app::{PUBLIC_URL, spawn_app, spawn_app_with};
use crate::support::cli::{ALLOW_LOOPBACK_FEEDS, necmail, run_command};
use crate::support::http::{FeedServer, HUGE_BYTES, fixture};
use crate::support::on_both_backends;

/// Where `photo.png` is served once copied.
fn photo_url() -> String {
    let name = NewMedia::new(MediaType::Png, fixture("photo.png"), "").name;
    format!("{PUBLIC_URL}/media/{name}")
}

on_both_backends! {
    async fn a_pages_images_are_copied_into_the_media_store_and_the_rest_left_out_with_warnings(db) {
        let server = FeedServer::start();
        let page = server.url("/templated/with-images.html");
        let (allow, yes) = ALLOW_LOOPBACK_FEEDS;
        let imported = run_command(
            necmail(db)
                .env(allow, yes)
                .env("NECMAIL_PUBLIC_URL", PUBLIC_URL)
                .args(["report", "import", &page]),
        );
        let out = imported.ok();
        assert!(out.contains("Labour NEC Report – September 2017 (1 sections)"), "{out}");
        let warnings: Vec<&str> = imported.stderr.lines().filter(|l| l.starts_with("warning:")).collect();
        assert_eq!(warnings.len(), 3, "{}", imported.stderr);
        for (image, why) in [
            ("/fixtures/missing.jpg", "answered 404 Not Found"),
            ("/fail/huge", "it is larger than the limit of 5 MiB (5242880 bytes)"),
            ("/fixtures/not-an-image.png", "it is not a JPEG, PNG, GIF or WebP image"),
        ] {
            let line = format!("the image {} is left out: ", server.url(image));
            assert!(
                warnings.iter().any(|w| w.contains(&line) && w.contains(why)),
                "{line}{why}: {warnings:#?}"
            );
        }
        assert_eq!(server.hits("/fixtures/photo.png").len(), 1, "one image is fetched once");
        // What the server produced beyond the limit sat in the kernel's socket buffers.
        assert!(server.huge_bytes_sent() < HUGE_BYTES / 2, "the 50 MB body was read on");

        let shown = crate::support::cli::run(db, &["report", "show", "1", "--json"]).json();
        let report = &shown[0];
        let photo = photo_url();
        assert_eq!(
            report["intro"].as_str().unwrap(),
            format!(
                "The NEC met on 19 September, the Tuesday before Annual Conference.\n\n\
                 ![NEC members in the conference hall]({photo})\n\n\
                 *The NEC at conference, 19 September*"
            )
        );
        let leader = report["sections"][0]["markdown"].as_str().unwrap();
        assert_eq!(
            leader,
            format!(
                "Alex Morgan said the party would arrive in Brighton with 575,000 members.\n\n\
                 ![The same photo again]({photo})\n\n*Seen twice, stored once*\n\n\
                 Text after a missing image."
            )
        );
        let text = format!("{}{}", report["intro"], report["sections"]);
        assert!(!text.contains("127.0.0.1"), "a third-party address is left: {text}");

        let app = spawn_app(db).await;
        let name = photo.rsplit('/').next().unwrap();
        let served = app.get(&format!("/media/{name}")).await;
        assert_eq!(served.status(), 200);
        let header = |h: &str| served.headers()[h].to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), "image/png");
        assert_eq!(header("cache-control"), "public, max-age=31536000, immutable");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(served.bytes().await.unwrap().as_ref(), fixture("photo.png"));
        let unknown = format!("{}.png", "0".repeat(64));
        for missing in [unknown.as_str(), "photo.png", "..%2Fnecmail.db"] {
            assert_eq!(app.get(&format!("/media/{missing}")).await.status(), 404, "{missing}");
        }
    }

    async fn a_polled_feed_items_images_are_copied_as_a_pages_are(db) {
        let server = FeedServer::start();
        let photo = server.url("/fixtures/photo.png");
        server.set_live(&[(
            "nec-1",
            "Labour NEC Report – October 2017",
            &format!(
                "<p>The NEC met.</p><figure><img src=\"{photo}\" alt=\"The NEC\">\
                 <figcaption>At the meeting</figcaption></figure>"
            ),
        )]);
        let (allow, yes) = ALLOW_LOOPBACK_FEEDS;
        let run = |args: &[&str]| {
            run_command(
                necmail(db)
                    .env(allow, yes)
                    .env("NECMAIL_PUBLIC_URL", PUBLIC_URL)
                    .args(args),
            )
        };
        run(&["list", "create", "members", "--name", "Members"]).ok();
        run(&["source", "add", &server.url("/live.rss"), "--list", "members", "--send-existing"]).ok();
        run(&["source", "poll"]).ok();
        let shown = run(&["report", "show", "1", "--json"]).json();
        assert_eq!(
            shown[0]["intro"],
            format!("The NEC met.\n\n![The NEC]({})\n\n*At the meeting*", photo_url())
        );
    }

    async fn images_by_reference_and_images_added_in_report_edit_are_copied_or_left_out_alike(db) {
        let server = FeedServer::start();
        let (photo, missing) = (server.url("/fixtures/photo.png"), server.url("/fixtures/missing.jpg"));
        let file = db.dir.path().join("november.md");
        std::fs::write(&file, format!(
            "---\ntitle: Labour NEC Report – November 2017\n---\nThe NEC met.\n\n![The NEC][photo]\n\n\
             ![Gone][gone]\n\nSee [the photo][photo] and ![again][photo].\n\n\
             [photo]: {photo}\n[gone]:\n  <{missing}> \"Missing\"\n\n\
             ![Inline](data:image/png;base64,iVBORw0KGgo=)\n"
        )).unwrap();
        let (allow, yes) = ALLOW_LOOPBACK_FEEDS;
        let run = |args: &[&str], editor: &str| {
            run_command(
                necmail(db)
                    .env(allow, yes)
                    .env("NECMAIL_PUBLIC_URL", PUBLIC_URL)
                    .env("EDITOR", editor)
                    .env_remove("VISUAL")
                    .args(args),
            )
        };
        let warnings = |stderr: &str| -> Vec<String> {
            stderr.lines().filter(|l| l.starts_with("warning:")).map(str::to_owned).collect()
        };
        let imported = run(&["report", "import", file.to_str().unwrap()], "true");
        imported.ok();
        let left = warnings(&imported.stderr);
        assert_eq!(left.len(), 1, "{left:#?}");
        assert!(left[0].contains(&format!("the image {missing} is left out: ")) && left[0].contains("404"), "{left:#?}");
        let shown = || crate::support::cli::run(db, &["report", "show", "1", "--json"]).json()[0]["intro"]
            .as_str().unwrap().to_owned();
        assert_eq!(
            shown(),
            format!(
                "The NEC met.\n\n![The NEC][photo]\n\nSee [the photo][photo] and ![again][photo].\n\n\
                 [photo]: {}\n\n![Inline](data:image/png;base64,iVBORw0KGgo=)",
                photo_url()
            )
        );
        assert_eq!(server.hits("/fixtures/photo.png").len(), 1);

        let added = server.url("/fixtures/photo.png");
        let editor = script(db, "add-images", &format!(
            "printf '\\n![Added]({added})\\n\\n![Added by reference][new]\\n\\n[new]: {}\\n\\n![Gone too]({})\\n' >> \"$1\"",
            server.url("/fail/huge"),
            server.url("/fixtures/not-an-image.png"),
        ));
        let edited = run(&["report", "edit", "1"], &editor);
        assert!(edited.ok().starts_with("updated report 1 "), "{}", edited.stdout);
        let left = warnings(&edited.stderr);
        assert_eq!(left.len(), 2, "{left:#?}");
        for (image, why) in [
            ("/fail/huge", "it is larger than the limit of 5 MiB"),
            ("/fixtures/not-an-image.png", "it is not a JPEG, PNG, GIF or WebP image"),
        ] {
            let line = format!("the image {} is left out: {why}", server.url(image));
            assert!(left.iter().any(|w| w.contains(&line)), "{line}: {left:#?}");
        }
        let text = shown();
        assert!(text.ends_with(&format!("![Added]({})", photo_url())), "{text}");
        assert!(!text.contains("127.0.0.1") && !text.contains("[new]"), "{text}");
        assert_eq!(server.hits("/fixtures/photo.png").len(), 2, "the edit's image is fetched");
    }

    async fn images_added_on_the_admins_edit_page_are_copied_or_left_out_as_report_edits_are(db) {
        let server = FeedServer::start();
        let admin = Admin::with(spawn_app_with(db, &[ALLOW_LOOPBACK_FEEDS]).await);
        admin.account("editor@example.org", Role::Editor).await;
        let editor = admin.sign_in("editor@example.org").await;
        let pasted = admin.submit("/admin/reports/new", &editor,
            &[("text", "# Labour NEC Report – November 2017\n\nThe NEC met.\n"), ("format", "md")])
            .await;
        assert_eq!(pasted.status(), 303);
        let page = pasted.headers()["location"].to_str().unwrap().to_owned();
        let store = &admin.app.store;
        let stored = || async { store.report(&ReportRef::Id(1)).await.unwrap() };
        let before = necmail::reports::import::markdown_file(&stored().await);
        let edited = format!(
            "{before}\n![Added]({})\n\n![Added by reference][new]\n\n[new]: {}\n\n\
             ![Gone too]({})\n",
            server.url("/fixtures/photo.png"),
            server.url("/fail/huge"),
            server.url("/fixtures/not-an-image.png"),
        );

        let saved = admin.submit(&page, &editor, &[("text", &edited)]).await;
        assert_eq!(saved.status(), 200, "shown with its warnings");
        let shown = text(saved).await;
        let warnings = &shown[shown.find("Saved, but:").expect("the warnings")..];
        let preview = warnings.find("/preview/member").expect("the preview below them");
        for why in [
            "huge is left out: it is larger than the limit of 5 MiB",
            "not-an-image.png is left out: it is not a JPEG, PNG, GIF or WebP image",
        ] {
            let at = warnings.find(why).unwrap_or_else(|| panic!("{why}: {shown}"));
            assert!(at < preview, "{why} above the preview");
        }
        let body = stored().await.body_markdown;
        assert!(body.trim_end().ends_with(&format!("![Added]({})", photo_url())), "{body}");
        assert!(!body.contains("127.0.0.1") && !body.contains("[new]"), "{body}");
        assert_eq!(server.hits("/fixtures/photo.png").len(), 1, "the edit's image is fetched");
        let log = admin.audit().await;
        assert_eq!(log[0].action, "report.edit");
        assert_eq!(log[0].actor, "editor@example.org");

        let again = necmail::reports::import::markdown_file(&stored().await);
        let unchanged = admin.submit(&page, &editor, &[("text", &again)]).await;
        assert_eq!(unchanged.status(), 303, "nothing left out, straight to the preview");
        assert_eq!(server.hits("/fixtures/photo.png").len(), 1, "a copied image is fetched once");
        assert_eq!(stored().await.body_markdown.trim_end(), body.trim_end());
    }
}
