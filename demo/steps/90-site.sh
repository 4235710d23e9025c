# Publish: the log rendered into docs/ (posts, experiment pages, links, tags, RSS, redirects) and
# built with mkdocs build --strict. A second build writes nothing: the database did not change.
step "Publish the site"
show recap site build
show recap publish --render-only
show recap site deploy --dry-run
printf 'Site ready: %s/site/index.html (live preview with drafts: recap site serve)\n' "$DEMO_DIR"
