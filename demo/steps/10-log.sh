# The log itself: a root, its database, weekly entries, an imported post, search, dumps.
step "Make a log"
show recap init "$DEMO_DIR" --title "Demo research log"
show recap db check
