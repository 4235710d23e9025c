# Links: capture offline, import a browser export, pull saved feeds, search, tidy, export.
step "Capture bookmarks (offline)"
show recap bookmark add "https://pytorch.org/docs/stable/onnx.html?utm_source=twitter#export" \
  --offline --title "torch.onnx documentation" --tag onnx --tag unity --note "opset 9 for Barracuda"
show recap bookmark add "https://github.com/pytorch/examples/tree/main/fast_neural_style" \
  --offline --title "fast_neural_style" --tag style-transfer --note "the TransformerNet we ship"
# The same link again, spelled differently: it updates the first one (tags merged).
show recap bookmark add "HTTPS://PyTorch.org:443/docs/stable/onnx.html" --offline --tag export
show recap bookmark add "https://fast.ai/" --offline --title "fast.ai" --tag fastai

step "Import a browser export and saved feeds"
show recap bookmark import "$DEMO_FIXTURES/links/bookmarks.html"
show recap feed add "$DEMO_FIXTURES/links/vision-weekly.xml" --tag vision
show recap feed add "$DEMO_FIXTURES/links/lab-notes.atom"
show recap feed pull
show recap feed list

step "Find and tidy"
show recap bookmark search transformer
show recap bookmark list --unread
recap bookmark list --json > "$DEMO_DIR/bookmarks.json"; head -n 12 "$DEMO_DIR/bookmarks.json"
show recap bookmark dupes
show recap bookmark tag 1 --add barracuda
show recap bookmark export "$DEMO_DIR/bookmarks-export.html"
show recap bookmark export "$DEMO_DIR/bookmarks-export.md"
head -n 8 "$DEMO_DIR/bookmarks-export.md"

step "Into the week: bookmarks linked to an entry fill its Links section"
# The log step made a 2021-W04 entry with a links marker; link two bookmarks to it with notes.
if recap show weekly-recap-2021-w04 >/dev/null 2>&1; then
  show recap bookmark add "https://arxiv.org/abs/1812.08008" --offline \
    --entry weekly-recap-2021-w04 --note "part affinity fields, for the key-point model"
  show recap bookmark add "https://pytorch.org/docs/stable/onnx.html" --offline \
    --entry weekly-recap-2021-w04
  recap show weekly-recap-2021-w04 | sed -n '/^## Links/,/^## Conclusion/p'
fi
