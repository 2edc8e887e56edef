"""The Qt names the plugin uses, from PyQt6 (Krita 6) or PyQt5 (Krita 5.1–5.2).

Everything else imports Qt from here, so the two bindings differ in one place only.
"""

from __future__ import annotations

from typing import TypeAlias

try:
    from PyQt6 import QtCore, QtGui, QtWidgets

    QT6 = True
except ImportError:
    from PyQt5 import QtCore, QtGui, QtWidgets  # type: ignore[no-redef]

    QT6 = False

Qt = QtCore.Qt
QBuffer = QtCore.QBuffer
QByteArray = QtCore.QByteArray
QIODevice = QtCore.QIODevice
QSize = QtCore.QSize
QTimer = QtCore.QTimer
QUrl = QtCore.QUrl
QEvent = QtCore.QEvent
QDesktopServices = QtGui.QDesktopServices
QIcon = QtGui.QIcon
QImage: TypeAlias = QtGui.QImage
QImageReader = QtGui.QImageReader
QPainter = QtGui.QPainter
QPixmap = QtGui.QPixmap
QApplication = QtWidgets.QApplication
QCheckBox = QtWidgets.QCheckBox
QComboBox = QtWidgets.QComboBox
QDoubleSpinBox = QtWidgets.QDoubleSpinBox
QFileDialog = QtWidgets.QFileDialog
QFormLayout = QtWidgets.QFormLayout
QGridLayout = QtWidgets.QGridLayout
QGroupBox = QtWidgets.QGroupBox
QHBoxLayout = QtWidgets.QHBoxLayout
QLabel = QtWidgets.QLabel
QLineEdit = QtWidgets.QLineEdit
QListWidget = QtWidgets.QListWidget
QListWidgetItem = QtWidgets.QListWidgetItem
QPlainTextEdit = QtWidgets.QPlainTextEdit
QProgressBar = QtWidgets.QProgressBar
QPushButton = QtWidgets.QPushButton
QScrollArea = QtWidgets.QScrollArea
QSlider = QtWidgets.QSlider
QSpinBox = QtWidgets.QSpinBox
QToolButton = QtWidgets.QToolButton
QToolTip = QtWidgets.QToolTip
QStyle = QtWidgets.QStyle
QStyleOptionComboBox = QtWidgets.QStyleOptionComboBox
QStylePainter = QtWidgets.QStylePainter
QVBoxLayout = QtWidgets.QVBoxLayout
QWidget: TypeAlias = QtWidgets.QWidget

# Enums moved into scoped classes in PyQt6; PyQt5 also accepts the scoped spelling for
# these since 5.11, so one spelling serves both.
ARGB32 = QImage.Format.Format_ARGB32
ALPHA8 = QImage.Format.Format_Alpha8
DESTINATION_IN = QPainter.CompositionMode.CompositionMode_DestinationIn
SMOOTH = Qt.TransformationMode.SmoothTransformation
IGNORE_ASPECT = Qt.AspectRatioMode.IgnoreAspectRatio
KEEP_ASPECT = Qt.AspectRatioMode.KeepAspectRatio
WRITE_ONLY = QIODevice.OpenModeFlag.WriteOnly
PASSWORD = QLineEdit.EchoMode.Password
HORIZONTAL = Qt.Orientation.Horizontal
SCROLL_OFF = Qt.ScrollBarPolicy.ScrollBarAlwaysOff
USER_ROLE = Qt.ItemDataRole.UserRole
RIGHT_ARROW = Qt.ArrowType.RightArrow
DOWN_ARROW = Qt.ArrowType.DownArrow
TEXT_BESIDE_ICON = Qt.ToolButtonStyle.ToolButtonTextBesideIcon
WRAP_LONG_ROWS = QFormLayout.RowWrapPolicy.WrapLongRows
ELIDE_RIGHT = Qt.TextElideMode.ElideRight
ELIDE_LEFT = Qt.TextElideMode.ElideLeft
TOOLTIP_EVENT = QEvent.Type.ToolTip
COMBO_CONTROL = QStyle.ComplexControl.CC_ComboBox
COMBO_FIELD = QStyle.SubControl.SC_ComboBoxEditField
COMBO_LABEL = QStyle.ControlElement.CE_ComboBoxLabel
SHORT_COMBO = QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon


def image_bytes(image: QImage) -> bytes:
    """The raw pixel bytes of an image (ARGB32 rows have no padding)."""
    return bytes(image.constBits().asstring(image.sizeInBytes()))
