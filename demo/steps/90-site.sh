# Publish: the log rendered into docs/ (posts, experiment pages, links, tags, RSS, redirects) and
# built with mkdocs build --strict. A second build writes nothing: the database did not change.
# New entries are drafts until published; 2021-W05 (the bare template) stays a draft, off the site.
step "Publish the site"
show recap publish 2021-W03
show recap publish 2021-W04
show recap site build
show recap site build --render-only
show recap site deploy --dry-run
printf 'Site ready: %s/site/index.html (live preview with drafts: recap site serve)\n' "$DEMO_DIR"
