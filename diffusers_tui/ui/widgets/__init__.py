"""The app's widgets: the settings sidebar and the live pane."""
