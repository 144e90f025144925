#!/usr/bin/python3
"""Open files as QGIS does when a user adds them, and say what QGIS made of them (JSON on stdout).

Runs with Debian's Python and QGIS (`make qgis`: apt-get install qgis python3-qgis), NOT the project's
venv: tests/products/test_qgis_desktop.py calls it as a subprocess.

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 qgis_view.py JOBS.json

JOBS.json is a list of jobs, all done in one QGIS session:
    {"raster": PATH, "png": OUT.png}   the layer built as "Add Raster Layer" builds it (QgsRasterLayer with
                                       the default LayerOptions: the sibling <name>.qml applied if there is
                                       one); its renderer, band mapping, limits and legend; rendered to
                                       OUT.png at one screen pixel per raster pixel
    {"vector": PATH, "layer": NAME}    the layer as QGIS opens it (default style from the GeoPackage's
                                       layer_styles); per field: edit widget, its config, alias, whether
                                       editable, and what the attribute table shows for the first feature
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (Qgis, QgsApplication, QgsMapRendererParallelJob, QgsMapSettings,  # noqa: E402
                       QgsRasterLayer, QgsVectorLayer)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def _limits(enhancement) -> list[float] | None:
    return None if enhancement is None else [enhancement.minimumValue(), enhancement.maximumValue()]


def raster(path: str, png: str | None) -> dict:
    layer = QgsRasterLayer(path, os.path.basename(path), "gdal", QgsRasterLayer.LayerOptions())
    if not layer.isValid():
        return {"file": path, "valid": False, "error": layer.error().summary()}
    renderer = layer.renderer()
    info: dict = {"type": renderer.type()}
    if renderer.type() == "multibandcolor":
        bands = (renderer.redBand(), renderer.greenBand(), renderer.blueBand())
        info.update(bands=list(bands), band_names=[layer.bandName(b) for b in bands],
                    limits=[_limits(e) for e in (renderer.redContrastEnhancement(),
                                                 renderer.greenContrastEnhancement(),
                                                 renderer.blueContrastEnhancement())])
    elif renderer.type() == "singlebandpseudocolor":
        info.update(min=renderer.classificationMin(), max=renderer.classificationMax())
    elif renderer.type() == "singlebandgray":
        info.update(limits=_limits(renderer.contrastEnhancement()))
    info["legend"] = [[label, colour.name() if isinstance(colour, QColor) else str(colour)]
                      for label, colour in renderer.legendSymbologyItems()]
    result = {"file": path, "valid": True, "qgis": Qgis.version(), "style_uri": layer.styleURI(),
              "width": layer.width(), "height": layer.height(), "renderer": info}
    if png:
        settings = QgsMapSettings()
        settings.setLayers([layer])
        settings.setDestinationCrs(layer.crs())
        settings.setExtent(layer.extent())
        settings.setOutputSize(QSize(layer.width(), layer.height()))
        settings.setBackgroundColor(QColor(255, 255, 255))
        job = QgsMapRendererParallelJob(settings)
        job.start()
        job.waitForFinished()
        result["png"] = png if job.renderedImage().save(png, "PNG") else None
    return result


def vector(path: str, layer_name: str) -> dict:
    uri = f"{path}|layername={layer_name}"
    layer = QgsVectorLayer(uri, layer_name, "ogr")
    if not layer.isValid():
        return {"uri": uri, "valid": False}
    first = next(layer.getFeatures())
    fields = {}
    for index, field in enumerate(layer.fields()):
        setup = layer.editorWidgetSetup(index)
        formatter = QgsApplication.fieldFormatterRegistry().fieldFormatter(setup.type())
        value = first.attribute(index)
        fields[field.name()] = {
            "widget": setup.type(), "config": setup.config(), "alias": field.alias(),
            "editable": not layer.editFormConfig().readOnly(index), "first_value": value,
            "first_shown": formatter.representValue(layer, index, setup.config(), None, value)}
    _count, _ids, names, _descriptions, _error = layer.listStylesInDatabase()
    return {"uri": uri, "valid": True, "features": layer.featureCount(), "db_styles": names, "fields": fields}


def main() -> int:
    with open(sys.argv[1]) as stream:
        jobs = json.load(stream)
    app = QgsApplication([], False)
    app.initQgis()
    results = [raster(j["raster"], j.get("png")) if "raster" in j else vector(j["vector"], j["layer"])
               for j in jobs]
    print(json.dumps(results, default=str), flush=True)
    app.exitQgis()  # after every layer is gone
    return 0


if __name__ == "__main__":
    sys.exit(main())
