"""Classify: land cover from composites: features, training data, models, prediction, accuracy.

    features    the features classify.features chooses, stacked per pixel; gaps of sub-period composites filled
    training    labelled points/polygons read and sampled; fitting a model on a stratified share
    reference   training pixels sampled from an existing land-cover map (translated, eroded, cleaned)
    models      classifiers by name or import path; saving and loading them safely (skops)
    predict     class maps and confidence, block by block on Dask
    accuracy    sample accuracy, spatially blocked cross-validation, agreement with a reference map
    sampling    Olofsson et al. (2014) sample designs and error-adjusted area estimators
    labelling   the sample's labelling form in QGIS (a drop-down of class names, stored in its GPKG)
    temporal    the flicker filter across periods
    cleaning    temporal gap filling and the minimum mapping unit, before any area is counted
    stage       the classify stage of one AOI (writes classes/, classes_cleaned/, metrics/, models/, validation/)

Uses: ingest (the grid), and the base modules.
"""

from pipeline.classify.features import FeatureSet, classification_features, feature_set, feature_stack
from pipeline.classify.training import read_training_data, training_samples, label_positions, polygon_pixels, train_classifier, train_random_forest
from pipeline.classify.predict import UNCLASSIFIED, predict_classes, predict_class_map
from pipeline.classify.accuracy import (accuracy_assessment, compare_with_reference, permutation_importance, spatial_blocks,
                                       spatial_cross_validation)
from pipeline.classify.models import make_classifier, load_model, dump_model, check_features
from pipeline.classify.temporal import remove_flicker
from pipeline.classify.cleaning import gap_fill, sieve, sieve_change_map, mmu_pixels, cleaning_flags
from pipeline.classify.reference import map_training_samples, reference_on_grid, sample_reference_pixels

__all__ = ["FeatureSet", "classification_features", "feature_set", "feature_stack", "read_training_data", "training_samples", "label_positions", "polygon_pixels",
           "train_classifier", "train_random_forest", "UNCLASSIFIED", "predict_classes", "predict_class_map",
           "accuracy_assessment", "compare_with_reference", "permutation_importance", "spatial_blocks",
           "spatial_cross_validation", "make_classifier", "load_model", "dump_model", "check_features",
           "remove_flicker", "gap_fill", "sieve", "sieve_change_map", "mmu_pixels", "cleaning_flags",
           "map_training_samples", "reference_on_grid", "sample_reference_pixels"]
