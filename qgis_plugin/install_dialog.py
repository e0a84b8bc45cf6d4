"""The "Install missing packages…" dialog: what will be installed where, then pip in the
background (QGIS task manager) with a progress bar and its log — only after *Install* is clicked.

:class:`InstallTask` runs :func:`~qgis_plugin.installer.run_pip` in a worker thread; its output
lines reach the dialog through a queued signal. :class:`InstallDialog` shows the
:class:`~qgis_plugin.installer.InstallPlan` first and starts nothing by itself.
"""

from __future__ import annotations

import importlib
import traceback

from qgis.core import QgsApplication, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from .bootstrap import Dependency, missing_dependencies
from .compat import MSG_CRITICAL, MSG_INFO
from .installer import InstallPlan, ensure_packages_on_path, plan_install, run_pip

LOG_TAG = "PIMC"
_CAN_CANCEL = getattr(QgsTask, "Flag", QgsTask).CanCancel


class InstallTask(QgsTask):
    """``pip install --target`` of an :class:`InstallPlan` in the background.

    After it finished: ``status`` (pip's exit status, -1 when cancelled), ``error`` (one line or
    None), ``log`` (all output lines), ``done``.
    """

    line = pyqtSignal(str)

    def __init__(self, plan: InstallPlan) -> None:
        super().__init__(f"PIMC: installing {', '.join(plan.packages)}", _CAN_CANCEL)
        self.plan = plan
        self.status: int | None = None
        self.error: str | None = None
        self.log: list[str] = []
        self.done = False
        self._proc = None

    def run(self) -> bool:  # noqa: D401 (QGIS API)
        try:
            self.status = run_pip(self.plan, self._emit, self.setProgress, self.isCanceled, self._started)
        except Exception as e:  # noqa: BLE001 - e.g. the interpreter cannot be started
            self.error = f"pip could not be started ({type(e).__name__}: {e})"
            self._emit(traceback.format_exc())
            return False
        if self.status == -1:
            self.error = "cancelled; nothing was installed"
        elif self.status != 0:
            tail = next((ln for ln in reversed(self.log) if ln.strip().startswith("ERROR")), "")
            self.error = f"pip stopped with status {self.status}" + (f": {tail.strip()}" if tail else "")
        return self.status == 0

    def _started(self, proc) -> None:
        self._proc = proc

    def _emit(self, text: str) -> None:
        self.log.append(text)
        self.line.emit(text)

    def cancel(self) -> None:  # noqa: D401 (QGIS API)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
        super().cancel()

    def finished(self, result: bool) -> None:  # noqa: D401 (QGIS API)
        self.done = True


class InstallDialog(QDialog):
    """Shows the plan; *Install* starts :class:`InstallTask`; progress and log below.

    Args:
        missing: the packages to install (default: what :func:`missing_dependencies` finds).
        pip_args: extra pip arguments (``--no-index --find-links FOLDER`` for a wheel folder).
        target: the folder (default :func:`~qgis_plugin.installer.packages_dir`).
    """

    def __init__(self, parent=None, missing: list[Dependency] | None = None, pip_args: tuple[str, ...] = (),
                 target=None, iface=None) -> None:
        super().__init__(parent)
        self.setObjectName("PimcInstallDialog")
        self.setWindowTitle("PIMC: install missing Python packages")
        self.iface = iface
        self.missing = missing_dependencies() if missing is None else list(missing)
        self.plan = plan_install(self.missing, target=target, pip_args=pip_args)
        self.task: InstallTask | None = None

        lay = QVBoxLayout(self)
        self.plan_view = QPlainTextEdit(self.plan.describe() if self.missing else
                                        "Every package PIMC needs is installed already.")
        self.plan_view.setReadOnly(True)
        self.plan_view.setMinimumSize(560, 160)
        lay.addWidget(self.plan_view)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.hide()
        lay.addWidget(self.progress)
        self.status_label = QLabel("Nothing is installed until you click Install.")
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.hide()
        lay.addWidget(self.log_view)

        buttons = QHBoxLayout()  # (a QDialogButtonBox shows its buttons again on each layout)
        buttons.addStretch(1)
        self.install_button = QPushButton("Install")
        self.install_button.setEnabled(bool(self.missing) and self.plan.problem is None)
        self.cancel_button = QPushButton("Cancel install")
        self.cancel_button.hide()
        self.close_button = QPushButton("Close")
        for b in (self.install_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        self.install_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.reject)
        lay.addLayout(buttons)

    def start(self) -> InstallTask | None:
        """Start the install (what the *Install* button does)."""
        if self.task is not None or not self.missing or self.plan.problem:
            return None
        self.task = task = InstallTask(self.plan)
        task.line.connect(self.log_view.appendPlainText)
        task.progressChanged.connect(lambda p: self.progress.setValue(int(p)))
        task.taskCompleted.connect(self._finished)
        task.taskTerminated.connect(self._finished)
        self.install_button.setEnabled(False)
        self.close_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.show()
        self.log_view.show()
        self.cancel_button.show()
        self.status_label.setText(f"installing into {self.plan.target} …")
        QgsApplication.taskManager().addTask(task)
        return task

    def cancel(self) -> None:
        if self.task is not None and not self.task.done:
            self.task.cancel()

    def _finished(self) -> None:
        task = self.task
        self.cancel_button.hide()
        self.close_button.setEnabled(True)
        if task is not None and task.status == 0:
            ensure_packages_on_path()
            importlib.invalidate_caches()
            still = [d.pip_name for d in missing_dependencies() if d in self.missing]
            text = (f"installed into {self.plan.target}"
                    + (f"; still not importable: {', '.join(still)} (see the log)" if still else
                       "; the PIMC tools can use them now (restart QGIS if a tool failed to load before)"))
            self.progress.setValue(100)
            level = MSG_INFO
        else:
            self.progress.hide()  # no stale bar next to an error
            text = (task.error if task is not None else None) or "the install failed"
            self.install_button.setEnabled(True)
            self.task = None
            level = MSG_CRITICAL
        self.status_label.setText(text)
        log = "\n".join(task.log) if task is not None else ""
        QgsMessageLog.logMessage(f"install of {', '.join(self.plan.packages)}: {text}\n{log}", LOG_TAG, level)
        if self.iface is not None:
            self.iface.messageBar().pushMessage("PIMC", text, level=level, duration=10)
