# The log itself: a root, its database, weekly entries, imported posts, search, dumps.
step "Make a log"
show recap init "$DEMO_DIR" --title "Demo research log"
show recap db check

step "Import existing posts (Jekyll/fastpages and Quarto)"
if [ -d "$SHARED_DIR/fixtures/posts" ]; then
  show recap import "$SHARED_DIR/fixtures/posts"
fi
show recap import "$DEMO_FIXTURES/posts"

step "This week's recap and two earlier weeks"
show recap new --week 2021-W04 --body-file - <<'BODY'
## Introduction

Back to the fastai to Unity workflow this week, and a first look at Barracuda's operator list.

## fastai to Unity

The key-point model still predicts nearly the same spot for every image.

<!-- recap:links -->

<!-- recap:runs -->

## Conclusion

Next: a better data set for key points.
BODY
show recap new --week 2021-W05 --no-edit
show recap new --week 2021-W05 --no-edit   # the same week again: opens it, never a duplicate
show recap list
show recap search '"key point" OR keypoint OR barracuda'

step "A text dump that can live in git, restored exactly"
show recap db dump "$DEMO_DIR/log.dump"
show recap db load "$DEMO_DIR/log.dump"
recap db dump | cmp - "$DEMO_DIR/log.dump" && echo "dump -> load -> dump: identical"
show recap db backup "$DEMO_DIR/backup.db"
