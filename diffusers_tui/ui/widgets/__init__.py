"""The app's widgets: the settings sidebar, the live pane, the help screen."""
