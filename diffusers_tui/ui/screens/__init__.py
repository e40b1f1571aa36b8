"""The app's screens: main, compare, history, help, and the save-to dialog."""
