"""The docker's history of the active document's runs, newest first, with thumbnails of
their result files and "Run again", "Use these settings", "Show files".

Thumbnails are read and scaled on a thread (QImage is thread-safe; a 4K PNG takes ~0.3 s),
and become icons in pump(), on the Qt main thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .core import core
from .qt import (
    KEEP_ASPECT,
    SCROLL_OFF,
    USER_ROLE,
    QDesktopServices,
    QGridLayout,
    QGroupBox,
    QIcon,
    QImage,
    QImageReader,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPixmap,
    QPushButton,
    QSize,
    QUrl,
    QVBoxLayout,
)

THUMB = 56  # px: the icon's side
SHOWN_ROWS = 3  # runs in view at once; more scroll within the list
Action = Callable[[core.RunRecord], None]
RUN_AGAIN_TIP = "The same workflow, values and seed, on the active document's canvas"


class HistoryBox(QGroupBox):
    """Owned by the Qt main thread. `run_again` and `use` get the chosen run."""

    def __init__(self, run_again: Action, use: Action) -> None:
        super().__init__("History")
        self.records: dict[str, core.RunRecord] = {}
        self.open_url: Callable[[QUrl], object] = QDesktopServices.openUrl  # tests replace it
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setWordWrap(False)  # short lines, elided when narrow; the tooltip has all
        self.list.setHorizontalScrollBarPolicy(SCROLL_OFF)
        self.empty = QLabel("Runs on this document are listed here, and kept in its .kra.")
        self.empty.setWordWrap(True)
        self.run_again_button = QPushButton("Run again")
        self.use_button = QPushButton("Use these settings")
        self.files_button = QPushButton("Show files")
        self.run_again_button.setToolTip(RUN_AGAIN_TIP)
        self.use_button.setToolTip("Put this run's values and seed in the fields")
        self._layout()
        self._thumbs: dict[str, QImage | None] = {}
        self._loading: dict[str, Future[QImage | None]] = {}
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="comfyrelay-thumbs")
        self.run_again_button.clicked.connect(lambda _=False: self._act(run_again))
        self.use_button.clicked.connect(lambda _=False: self._act(use))
        self.files_button.clicked.connect(lambda _=False: self._act(self.show_files))
        self.list.currentRowChanged.connect(lambda _=0: self.refresh_buttons())

    def _layout(self) -> None:
        box = QVBoxLayout(self)
        box.addWidget(self.empty)
        box.addWidget(self.list)
        buttons = QGridLayout()  # two rows: three buttons side by side overflow a docker
        buttons.addWidget(self.run_again_button, 0, 0)
        buttons.addWidget(self.files_button, 0, 1)
        buttons.addWidget(self.use_button, 1, 0, 1, 2)
        box.addLayout(buttons)

    # ---- contents ----
    def show_history(self, history: core.RunHistory) -> None:
        """List `history` newest first, the newest chosen."""
        self.list.clear()
        self.records = {r.id: r for r in history.runs}
        for record in reversed(history.runs):
            self.list.addItem(self._item(record))
        self.list.setCurrentRow(0 if history.runs else -1)
        self.empty.setVisible(not history.runs)
        self.list.setVisible(bool(history.runs))
        self._fit_height()
        self.refresh_buttons()

    def _fit_height(self) -> None:
        """As tall as its runs, up to SHOWN_ROWS: no empty list below one run."""
        rows = range(min(self.list.count(), SHOWN_ROWS))
        height = sum(max(self.list.sizeHintForRow(row), THUMB + 4) for row in rows)
        self.list.setFixedHeight(height + 2 * self.list.frameWidth() + 4)

    def _item(self, record: core.RunRecord) -> QListWidgetItem:
        item = QListWidgetItem("\n".join(record.lines()))
        item.setData(USER_ROLE, record.id)
        item.setToolTip("\n".join([record.describe(), *record.outputs]))
        image = record.image_output()
        if image:
            self._want(image)
            thumb = self._thumbs.get(image)
            if thumb is not None:
                item.setIcon(QIcon(QPixmap.fromImage(thumb)))
        return item

    def _want(self, path: str) -> None:
        if path not in self._thumbs and path not in self._loading:
            self._loading[path] = self._reader.submit(read_thumbnail, path, THUMB)

    def pump(self) -> None:
        """Thumbnails read so far become the icons of their runs."""
        for path, future in list(self._loading.items()):
            if not future.done():
                continue
            del self._loading[path]
            self._thumbs[path] = future.result() if future.exception() is None else None
            self._set_icons(path)

    def _set_icons(self, path: str) -> None:
        thumb = self._thumbs.get(path)
        if thumb is None:
            return
        icon = QIcon(QPixmap.fromImage(thumb))
        for row in range(self.list.count()):
            item = self.list.item(row)
            record = self.records.get(str(item.data(USER_ROLE))) if item else None
            if item is not None and record is not None and record.image_output() == path:
                item.setIcon(icon)

    @property
    def loading(self) -> bool:
        return bool(self._loading)

    # ---- actions ----
    def selected(self) -> core.RunRecord | None:
        item = self.list.currentItem()
        return self.records.get(str(item.data(USER_ROLE))) if item is not None else None

    def refresh_buttons(self, can_rerun: bool = True, why_not: str = "") -> None:
        """`can_rerun`, `why_not`: the session's View.can_rerun and rerun_tip."""
        record = self.selected()
        self.run_again_button.setEnabled(record is not None and can_rerun)
        tip = why_not or RUN_AGAIN_TIP
        if self.run_again_button.toolTip() != tip:
            self.run_again_button.setToolTip(tip)
        self.use_button.setEnabled(record is not None)
        self.files_button.setEnabled(record is not None and bool(record.outputs))

    def _act(self, action: Action) -> None:
        record = self.selected()
        if record is not None:
            action(record)

    def show_files(self, record: core.RunRecord) -> None:
        """The folder of the run's result files, in the system's file manager."""
        if record.outputs:
            self.open_url(QUrl.fromLocalFile(str(Path(record.outputs[0]).parent)))

    def shutdown(self) -> None:
        self._reader.shutdown(wait=False, cancel_futures=True)


def read_thumbnail(path: str, side: int) -> QImage | None:
    """The image scaled to fit side × side (a reader thread); None when it cannot be read
    (moved, deleted)."""
    reader = QImageReader(path)
    size = reader.size()
    if size.isValid():
        reader.setScaledSize(size.scaled(side, side, KEEP_ASPECT))
    image = reader.read()
    return None if image.isNull() else image
