"""The labelling form of a validation sample in QGIS: class names in a drop-down, not codes to type.

`labelling_style` is a QGIS layer style (QML) with only the Fields and Forms categories: a value map
(QGIS's "Value Map" edit widget, a drop-down of names storing codes) on `reference_code`, the field the
person labelling fills in, and on `map_code`, shown as the mapped class's name and read-only, as are
`sample_id`, `map_class` and the period fields. `io.write_gpkg(..., qgis_style=...)` stores it in the sample's GeoPackage
as the layer's default style, so QGIS applies it when the layer is opened. No symbology is set: QGIS
keeps its default renderer.

The XML follows what QGIS 3 writes (qgsvectorlayer.cpp, qgseditorwidgetsetup; in a value map entry
the option's name is the text shown and its value the code stored); an unlabelled (NULL) reference code
is shown as "(not labelled yet)" through QGIS's null-value key of the value map.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

__all__ = ["labelling_style", "VALUE_MAP_NULL"]

VALUE_MAP_NULL = "{2839923C-8B7D-419E-B84B-CA2FE9B80EC7}"  # QgsValueMapFieldFormatter::NULL_VALUE
_QGIS_VERSION = "3.28.0-Firenze"
_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
_ALIASES = {"sample_id": "Sample", "map_code": "Mapped class", "map_class": "Mapped class (name)",
            "reference_code": "Reference class (from imagery)"}


def labelling_style(names: Mapping[int, str], *, reference_field: str = "reference_code") -> str:
    """QML for a sample design layer: `names` (code -> class name) as a drop-down on `reference_field`
    and as the shown value of `map_code`; only `reference_field` is editable."""
    root = ET.Element("qgis", {"version": _QGIS_VERSION, "styleCategories": "Fields|Forms"})
    fields = ET.SubElement(root, "fieldConfiguration")
    for field, unlabelled in ((reference_field, True), ("map_code", False)):
        element = ET.SubElement(fields, "field", {"name": field, "configurationFlags": "None"})
        widget = ET.SubElement(element, "editWidget", {"type": "ValueMap"})
        options = ET.SubElement(ET.SubElement(ET.SubElement(widget, "config"), "Option", {"type": "Map"}),
                                "Option", {"name": "map", "type": "List"})
        entries = ([("(not labelled yet)", VALUE_MAP_NULL)] if unlabelled else []) + [
            (name, str(int(code))) for code, name in sorted(names.items())]
        for shown, stored in entries:
            ET.SubElement(ET.SubElement(options, "Option", {"type": "Map"}), "Option",
                          {"name": shown, "value": stored, "type": "QString"})
    aliases = ET.SubElement(root, "aliases")
    for index, field in enumerate(("sample_id", "map_code", "map_class", reference_field)):
        ET.SubElement(aliases, "alias", {"field": field, "index": str(index),
                                         "name": _ALIASES.get(field, _ALIASES["reference_code"])})
    editable = ET.SubElement(root, "editable")
    for field in ("sample_id", "map_code", "map_class", "period", "period_from", "period_to", reference_field):
        ET.SubElement(editable, "field", {"name": field, "editable": "1" if field == reference_field else "0"})
    ET.indent(root, space="  ")
    return _DOCTYPE + ET.tostring(root, encoding="unicode") + "\n"
