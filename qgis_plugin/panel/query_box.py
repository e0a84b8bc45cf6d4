"""The *text query* row of the panel's *Maps of a region* section: a sentence ("green-up in
April, harvested in July", or a class name) and a *Query* button. It is enabled only while the
model file has a text head (written by ``pimc text-fit``: :func:`qgis_plugin.mapping.has_text_head`);
the run itself (:func:`pimc_core.maps.text_query.query_map` over the whole series, as ``pimc
query``) is started by the section through the same task as its other maps."""

from __future__ import annotations

from qgis.PyQt.QtWidgets import QHBoxLayout, QLineEdit, QPushButton, QWidget

from ..mapping import has_text_head

#: The tooltip of the disabled row.
NO_TEXT_HEAD = ("text queries need a model with a text head: add one with 'pimc text-fit SOURCE --model M.pimc "
                "--out M_text.pimc' and choose that file")
#: The tooltip of the enabled row.
QUERY_TIP = ("Map how similar every pixel of the series is to the sentence (cosine of the model's pixel and text "
             "embeddings, -1..1): phenology phrases like 'green-up in April, harvested in July' or a class name")


class QueryBox(QWidget):
    """The sentence field and the *Query* button (disabled without a text head)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.query_edit = QLineEdit()
        self.query_edit.setObjectName("PimcQueryEdit")
        self.query_edit.setPlaceholderText("text query, e.g. green-up in April")
        self.query_button = QPushButton("Query")
        self.query_button.setObjectName("PimcQueryButton")
        row.addWidget(self.query_edit, 1)
        row.addWidget(self.query_button)
        self.follow_model("")

    def follow_model(self, spec: str) -> bool:
        """Enable the row when ``spec`` is a model file with a text head; return whether it is."""
        ok = has_text_head(spec)
        for w in (self.query_edit, self.query_button):
            w.setEnabled(ok)
            w.setToolTip(QUERY_TIP if ok else NO_TEXT_HEAD)
        return ok

    def text(self) -> str:
        return self.query_edit.text().strip()


__all__ = ["NO_TEXT_HEAD", "QueryBox"]
